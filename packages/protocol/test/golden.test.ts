// The golden vectors pin the wire format in both directions: encoding each example gives the
// bytes in test/vectors/, and decoding those bytes gives the example back.
// UPDATE_VECTORS=1 rewrites the files (review the diff: every change is a format change).

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FRAME_HEADER_SIZE, FRAME_SYNC, FrameDecoder, type MessageName, wire } from '../src/index.js';
import { examples } from './examples.js';
import { type Decoded, collectingHandlers, encodeFrame } from './helpers.js';
import { parseVector, renderVector } from './vectors.js';

const vectorDir = new URL('../../../../test/vectors/', import.meta.url);
const update = process.env.UPDATE_VECTORS === '1';

for (const layout of wire.layouts) {
  const name = layout.spec.name as MessageName;
  const example = examples[name] as Record<string, unknown>;
  const file = fileURLToPath(new URL(`${name}.hex`, vectorDir));

  test(`golden vector: ${name}`, () => {
    const frame = encodeFrame([[name, example]]);
    const encoded = frame.subarray(FRAME_HEADER_SIZE);
    if (update) writeFileSync(file, renderVector(layout, encoded, example));
    const golden = parseVector(readFileSync(file, 'utf8'));

    assert.equal(Buffer.from(encoded).toString('hex'), Buffer.from(golden).toString('hex'), 'encoding the example gives the golden bytes');

    const header = Buffer.alloc(FRAME_HEADER_SIZE);
    header.writeUInt32LE(golden.length, 0);
    header.writeUInt16LE(1, 4);
    header.writeUInt16LE(FRAME_SYNC, 6);
    const out: Decoded[] = [];
    new FrameDecoder(collectingHandlers(out)).decodeAll(Buffer.concat([header, golden]));
    assert.deepEqual(out, [{ name, value: example }], 'decoding the golden bytes gives the example');
  });
}

test('every message has a golden vector and an example', () => {
  assert.deepEqual(Object.keys(examples).sort(), wire.layouts.map((l) => l.spec.name).sort());
});

test('socketStats, the hot message, is at most 48 bytes on the wire', () => {
  const bytes = encodeFrame([['socketStats', examples.socketStats]]);
  assert.ok(bytes.length - FRAME_HEADER_SIZE <= 48, `${bytes.length - FRAME_HEADER_SIZE} bytes`);
});
