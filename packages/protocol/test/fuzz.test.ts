// Seeded fuzzing: random and mutated input must either decode or throw a ProtocolError with an
// offset inside the input; nothing else, and never a hang. The seed is printed on failure so
// that a failing case replays exactly; FUZZ_SEED and FUZZ_CASES override the defaults.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FRAME_HEADER_SIZE, FRAME_SYNC, FrameEncoder, type MessageName, ProtocolError, StreamDecoder, wire } from '../src/index.js';
import { examples } from './examples.js';
import { collectingHandlers, prng } from './helpers.js';

const seed = Number(process.env.FUZZ_SEED ?? 20261122);
const cases = Number(process.env.FUZZ_CASES ?? 4000);

function validStream(random: () => number): Buffer {
  const encoder = new FrameEncoder({ targetFrameBytes: 64 + Math.floor(random() * 400) });
  encoder.write('handshake', examples.handshake);
  const names = Object.keys(examples) as MessageName[];
  const n = 1 + Math.floor(random() * 20);
  for (let i = 0; i < n; i++) {
    const name = names[1 + Math.floor(random() * (names.length - 1))]!;
    encoder.writeAny(name, examples[name] as Record<string, unknown>);
  }
  return Buffer.from(encoder.finish());
}

function randomBytes(random: () => number, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** A well-framed frame whose body is random: reaches the message walker's checks. */
function randomFrame(random: () => number): Buffer {
  const ids = wire.layouts.map((l) => l.spec.id);
  const body = randomBytes(random, Math.floor(random() * 200));
  // Often start messages with a real id and a plausible length.
  for (let p = 0; p + 4 <= body.length; p += 4 + Math.floor(random() * 60)) {
    body.writeUInt16LE(ids[Math.floor(random() * ids.length)]!, p);
    if (random() < 0.7) body.writeUInt16LE(Math.min(body.length - p, 4 + Math.floor(random() * 60)), p + 2);
  }
  const header = Buffer.alloc(FRAME_HEADER_SIZE);
  header.writeUInt32LE(body.length, 0);
  header.writeUInt16LE(Math.floor(random() * 6), 4);
  header.writeUInt16LE(FRAME_SYNC, 6);
  return Buffer.concat([header, body]);
}

function mutate(random: () => number, input: Buffer): Buffer {
  let out = Buffer.from(input);
  const edits = 1 + Math.floor(random() * 4);
  for (let e = 0; e < edits && out.length > 0; e++) {
    const at = Math.floor(random() * out.length);
    switch (Math.floor(random() * 5)) {
      case 0: out[at] = Math.floor(random() * 256); break;
      case 1: out[at] = out[at]! ^ (1 << Math.floor(random() * 8)); break;
      case 2: out = Buffer.concat([out.subarray(0, at), randomBytes(random, 1 + Math.floor(random() * 8)), out.subarray(at)]); break;
      case 3: out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + Math.floor(random() * 8))]); break;
      default: out = out.subarray(0, at); break;
    }
  }
  return out;
}

/** Feeds `input` in random chunks; returns the error, if any. Fails on anything but ProtocolError. */
function feed(random: () => number, input: Buffer, expectHandshake: boolean, label: string): void {
  const decoder = new StreamDecoder(collectingHandlers([]), { expectHandshake, maxFrameBytes: 4096 });
  try {
    for (let p = 0; p < input.length; ) {
      const n = 1 + Math.floor(random() * 97);
      decoder.push(input.subarray(p, p + n));
      p += n;
    }
  } catch (e) {
    if (!(e instanceof ProtocolError)) assert.fail(`${label}: threw ${String(e)} (seed ${seed}); input ${input.toString('hex')}`);
    assert.ok(e.offset >= 0 && e.offset <= input.length, `${label}: offset ${e.offset} outside input of ${input.length} (seed ${seed})`);
  }
}

test(`fuzz: ${cases} random, mutated and random-body inputs give data or a ProtocolError (seed ${seed})`, { timeout: 120_000 }, () => {
  const random = prng(seed);
  const started = Date.now();
  for (let i = 0; i < cases; i++) {
    const expectHandshake = random() < 0.5;
    feed(random, randomBytes(random, Math.floor(random() * 300)), expectHandshake, `random #${i}`);
    feed(random, mutate(random, validStream(random)), expectHandshake, `mutated #${i}`);
    feed(random, Buffer.concat([validStream(random), randomFrame(random), randomFrame(random)]), true, `random body #${i}`);
  }
  assert.ok(Date.now() - started < 120_000);
});
