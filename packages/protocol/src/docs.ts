// Renders docs/protocol.md from the schema, so that the document cannot drift from the code.

import { FRAME_HEADER_SIZE, FRAME_SYNC, MAX_FRAME_MESSAGES, MAX_MESSAGE_SIZE, MESSAGE_HEADER_SIZE, DEFAULT_MAX_FRAME_BYTES } from './framing.js';
import { layoutSchema } from './layout.js';
import * as schema from './schema.js';

const ENUMS: Record<string, Record<string, number>> = {
  SocketProtocol: schema.SocketProtocol,
  AddressFamily: schema.AddressFamily,
  SocketRole: schema.SocketRole,
  EntityFlags: schema.EntityFlags,
  CloseCause: schema.CloseCause,
  LossCause: schema.LossCause,
  ContainerRuntime: schema.ContainerRuntime,
};

export function renderProtocolDoc(): string {
  const out: string[] = [];
  const hex = (n: number) => `0x${n.toString(16)}`;
  out.push(
    '# Wire protocol',
    '',
    '<!-- Generated from packages/protocol/src/schema.ts by `pnpm docs`. Do not edit. -->',
    '',
    `Protocol version **${schema.PROTOCOL_VERSION}**, magic \`${hex(schema.MAGIC)}\` ("EBNT"). All integers are little-endian.`,
    '',
    '## Framing',
    '',
    'A connection carries frames from the collector to the reducer. The first message of the first frame is a `handshake`;',
    'a stream that starts otherwise, or whose magic or version differ, is refused.',
    '',
    `- **Frame**: an ${FRAME_HEADER_SIZE}-byte header, \`u32 bodyLength | u16 messageCount | u16 sync (${hex(FRAME_SYNC)})\`, then the messages.`,
    `  At most ${MAX_FRAME_MESSAGES} messages; a decoder refuses bodies over its limit (default ${DEFAULT_MAX_FRAME_BYTES} bytes).`,
    `- **Message**: a ${MESSAGE_HEADER_SIZE}-byte header, \`u16 id | u16 length\` (the whole message, header included, at most ${MAX_MESSAGE_SIZE}), then its fields.`,
    '  A decoder skips (and counts) a message whose id it does not know, and ignores bytes past the fields it knows.',
    '- **Fields**: the fixed-width fields first, at the offsets below, then the variable-length fields in order.',
    '  `string` and `bytes` are a `u16` length and the bytes (strings UTF-8); `strings` is a `u16` count, then that many strings.',
    '  `ip` is 16 bytes, IPv4 as IPv4-mapped IPv6. `u64`/`i64` are exact up to 2^53 in JavaScript.',
    '',
    '## Reserved ids',
    '',
    '| ids | for |',
    '|---|---|',
    ...schema.RESERVED_IDS.map((r) => `| ${r.from}–${r.to} | ${r.purpose} |`),
    '',
    '## Messages',
    '',
    '| id | message | size (bytes) | what it says |',
    '|---|---|---|---|',
  );
  const layouts = layoutSchema(schema.messages);
  for (const l of layouts) {
    const size = l.variable.length === 0 ? String(l.minSize) : `${l.minSize} + variable`;
    out.push(`| ${l.spec.id} | [${l.spec.name}](#${l.spec.name.toLowerCase()}) | ${size} | ${l.spec.doc} |`);
  }
  for (const l of layouts) {
    out.push('', `### ${l.spec.name}`, '', `Id ${l.spec.id}. ${l.spec.doc}`, '', '| offset | field | type | meaning |', '|---|---|---|---|');
    out.push(`| 0 | (id) | u16 | ${l.spec.id} |`, `| 2 | (length) | u16 | whole message, in bytes |`);
    for (const f of l.fixed) out.push(`| ${f.offset} | ${f.name} | ${f.type} | ${docOf(l.spec, f.name)} |`);
    for (const f of l.variable) out.push(`| … | ${f.name} | ${f.type} | ${docOf(l.spec, f.name)} |`);
  }
  out.push('', '## Enumerations', '');
  for (const [name, values] of Object.entries(ENUMS)) {
    out.push(`- **${name}**: ${Object.entries(values).map(([k, v]) => `${k} = ${v}`).join(', ')}`);
  }
  out.push('');
  return out.join('\n');
}

function docOf(spec: schema.MessageSpec, field: string): string {
  const f = spec.fields.find((x) => x.name === field)!;
  return f.doc.replace(/\|/g, '\\|');
}
