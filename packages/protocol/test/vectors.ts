// Golden vectors: test/vectors/<message>.hex holds one message's bytes as hex, one field per
// line with its name, so that a reviewer can read the layout. '#' starts a comment.

import { type MessageLayout } from '../src/index.js';

export function parseVector(text: string): Uint8Array {
  const hex = text
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error('a vector holds hex byte pairs only');
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
}

export function renderVector(layout: MessageLayout, bytes: Uint8Array, values: Record<string, unknown>): string {
  const hex = (from: number, to: number) => Buffer.from(bytes.subarray(from, to)).toString('hex');
  const lines = [
    `# ${layout.spec.name}: id ${layout.spec.id}, ${bytes.length} bytes. Generated from packages/protocol/test/examples.ts.`,
    `${hex(0, 2)} # id`,
    `${hex(2, 4)} # length`,
  ];
  for (const f of layout.fixed) lines.push(`${hex(f.offset, f.offset + f.width)} # ${f.name} = ${JSON.stringify(values[f.name])}`);
  let q = layout.fixedSize;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const f of layout.variable) {
    if (f.type === 'strings') {
      const count = view.getUint16(q, true);
      lines.push(`${hex(q, q + 2)} # ${f.name}: ${count} strings`);
      q += 2;
      for (let i = 0; i < count; i++) {
        const n = view.getUint16(q, true);
        lines.push(`${hex(q, q + 2)} ${hex(q + 2, q + 2 + n)} # ${f.name}[${i}] = ${JSON.stringify((values[f.name] as string[])[i])}`);
        q += 2 + n;
      }
    } else {
      const n = view.getUint16(q, true);
      lines.push(`${hex(q, q + 2)} ${hex(q + 2, q + 2 + n)} # ${f.name} = ${JSON.stringify(values[f.name])}`);
      q += 2 + n;
    }
  }
  return lines.join('\n') + '\n';
}
