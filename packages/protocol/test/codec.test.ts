// Encoding and decoding of every field type, their limits, and the schema's own checks.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  EncodeError,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  FrameEncoder,
  type MessageSpec,
  ProtocolError,
  compileSchema,
  formatIp,
  parseIp,
} from '../src/index.js';
import { examples } from './examples.js';
import { type Decoded, collectingHandlers, encodeFrame } from './helpers.js';

const allTypes: MessageSpec[] = [
  {
    id: 500,
    name: 'everything',
    doc: 'one field of every type',
    fields: [
      { name: 'a8', type: 'u8', doc: '' },
      { name: 'a16', type: 'u16', doc: '' },
      { name: 'a32', type: 'u32', doc: '' },
      { name: 'a64', type: 'u64', doc: '' },
      { name: 's32', type: 'i32', doc: '' },
      { name: 's64', type: 'i64', doc: '' },
      { name: 'real', type: 'f64', doc: '' },
      { name: 'addr', type: 'ip', doc: '' },
      { name: 'raw', type: 'bytes[6]', doc: '' },
      { name: 'text', type: 'string', doc: '' },
      { name: 'blob', type: 'bytes', doc: '' },
      { name: 'list', type: 'strings', doc: '' },
    ],
  },
  { id: 501, name: 'tiny', doc: '', fields: [{ name: 'x', type: 'u8', doc: '' }] },
];
const testWire = compileSchema(allTypes);

function roundTrip(name: string, value: Record<string, unknown>): Record<string, unknown> {
  const encoder = new FrameEncoder({}, testWire);
  encoder.writeAny(name, value);
  let got: Record<string, unknown> | undefined;
  new FrameDecoder({ [name]: (m: object) => (got = { ...m }) }, {}, testWire).decodeAll(encoder.finish());
  assert.ok(got, 'decoded');
  return got;
}

describe('field types', () => {
  const value = {
    a8: 255,
    a16: 65535,
    a32: 4294967295,
    a64: Number.MAX_SAFE_INTEGER,
    s32: -2147483648,
    s64: -(2 ** 53) + 1,
    real: -1.5e-300,
    addr: 'fe80::1:2',
    raw: Uint8Array.from([1, 2, 3, 4, 5, 6]),
    text: 'héllo 🌍',
    blob: Uint8Array.from([0, 255, 7]),
    list: ['', 'a', 'ünï'],
  };

  test('every type round-trips at its extremes', () => {
    assert.deepEqual(roundTrip('everything', value), value);
  });

  test('zero and empty values round-trip', () => {
    const zero = { ...value, a8: 0, a16: 0, a32: 0, a64: 0, s32: 0, s64: 0, real: 0, addr: '::', raw: new Uint8Array(6), text: '', blob: new Uint8Array(0), list: [] };
    assert.deepEqual(roundTrip('everything', zero), zero);
  });

  test('i64 keeps small negatives exact', () => {
    for (const s64 of [-1, -2, -4294967296, -4294967297, 4294967296]) {
      assert.equal(roundTrip('everything', { ...value, s64 }).s64, s64);
    }
  });

  test('a short fixed byte array is zero-padded; a long one is refused', () => {
    assert.deepEqual(roundTrip('everything', { ...value, raw: Uint8Array.from([9]) }).raw, Uint8Array.from([9, 0, 0, 0, 0, 0]));
    const encoder = new FrameEncoder({}, testWire);
    assert.throws(() => encoder.writeAny('everything', { ...value, raw: new Uint8Array(7) }), EncodeError);
  });

  test('an IP given as 16 bytes is taken as is', () => {
    assert.equal(roundTrip('everything', { ...value, addr: parseIp('127.0.0.1') }).addr, '127.0.0.1');
  });
});

describe('encode errors', () => {
  test('a string too long for a message is refused, and nothing is written', () => {
    const encoder = new FrameEncoder();
    assert.throws(
      () => encoder.write('processCommChange', { pid: 1, comm: 'x'.repeat(70_000) }),
      (e: unknown) => e instanceof EncodeError && e.field === 'comm',
    );
    assert.throws(() => encoder.write('processStart', { ...examples.processStart, comm: 'x'.repeat(40_000), cmdline: 'y'.repeat(40_000) }), EncodeError);
    assert.equal(encoder.pendingBytes, 0);
  });

  test('a bad IP address is refused with the field named', () => {
    const encoder = new FrameEncoder();
    assert.throws(
      () => encoder.write('socketAddress', { ...examples.socketAddress, remoteAddr: '10.0.0.256' }),
      (e: unknown) => e instanceof EncodeError && e.field === 'remoteAddr',
    );
  });
});

describe('frames', () => {
  test('the encoder starts a new frame past its target size, and all frames decode in order', () => {
    const encoder = new FrameEncoder({ targetFrameBytes: 1000 });
    for (let i = 0; i < 1000; i++) encoder.write('socketStats', { ...examples.socketStats, socketId: i });
    const bytes = encoder.finish();
    const out: Decoded[] = [];
    const decoder = new FrameDecoder(collectingHandlers(out));
    decoder.decodeAll(bytes);
    assert.equal(out.length, 1000);
    assert.deepEqual(out.map((d) => d.value.socketId), [...Array(1000).keys()]);
    assert.ok(decoder.stats.frames >= 44, `${decoder.stats.frames} frames`);
    assert.equal(encoder.pendingBytes, 0);
    assert.equal(encoder.finish().length, 0, 'nothing pending after finish');
  });

  test('a writer for one kind of message writes what write() writes; an unknown kind is refused', () => {
    const byName = new FrameEncoder();
    const bound = new FrameEncoder();
    const writeStats = bound.writerFor('socketStats');
    for (let i = 0; i < 3; i++) {
      byName.write('socketStats', { ...examples.socketStats, socketId: i });
      writeStats({ ...examples.socketStats, socketId: i });
    }
    assert.deepEqual(bound.finish(), byName.finish());
    assert.throws(() => bound.writerFor('noSuchMessage' as 'socketStats'), TypeError);
  });

  test('the encoder reuses its buffer: it grows for a large batch, then keeps working', () => {
    const encoder = new FrameEncoder({ initialCapacity: 1 });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10_000; i++) encoder.write('socketClose', { socketId: i, cause: 0 });
      const out: Decoded[] = [];
      new FrameDecoder(collectingHandlers(out)).decodeAll(encoder.finish());
      assert.equal(out.length, 10_000);
    }
  });

  test('a message longer than its fields (a newer sender) is decoded and its extra bytes skipped', () => {
    const bytes = Buffer.from(encodeFrame([['socketClose', examples.socketClose], ['heartbeat', examples.heartbeat]]));
    // Grow socketClose by 3 bytes: patch its length and the frame length.
    const first = FRAME_HEADER_SIZE;
    const len = bytes.readUInt16LE(first + 2);
    const grown = Buffer.concat([bytes.subarray(0, first + len), Buffer.from([1, 2, 3]), bytes.subarray(first + len)]);
    grown.writeUInt16LE(len + 3, first + 2);
    grown.writeUInt32LE(grown.length - FRAME_HEADER_SIZE, 0);
    const out: Decoded[] = [];
    new FrameDecoder(collectingHandlers(out)).decodeAll(grown);
    assert.deepEqual(out, [
      { name: 'socketClose', value: examples.socketClose },
      { name: 'heartbeat', value: examples.heartbeat },
    ]);
  });

  test('a message shorter than its fields is BAD_MESSAGE at its offset', () => {
    const bytes = Buffer.from(encodeFrame([['heartbeat', examples.heartbeat], ['socketClose', examples.socketClose]]));
    const second = FRAME_HEADER_SIZE + 12;
    bytes.writeUInt16LE(8, second + 2); // socketClose needs 13
    const shortened = Buffer.concat([bytes.subarray(0, second + 8)]);
    shortened.writeUInt32LE(shortened.length - FRAME_HEADER_SIZE, 0);
    assert.throws(
      () => new FrameDecoder(collectingHandlers([])).decodeAll(shortened),
      (e: unknown) => e instanceof ProtocolError && e.code === 'BAD_MESSAGE' && e.offset === second,
    );
  });

  test('an unknown message id is skipped and counted', () => {
    const newer = compileSchema([{ id: 900, name: 'fromTheFuture', doc: '', fields: [{ name: 'x', type: 'u32', doc: '' }] }]);
    const encoder = new FrameEncoder({}, newer);
    encoder.writeAny('fromTheFuture', { x: 1 });
    const tail = encodeFrame([['heartbeat', examples.heartbeat]]);
    const unknown: number[] = [];
    const out: Decoded[] = [];
    const decoder = new FrameDecoder(collectingHandlers(out), { onUnknown: (id) => unknown.push(id) });
    decoder.decodeAll(Buffer.concat([encoder.finish(), tail]));
    assert.deepEqual(unknown, [900]);
    assert.equal(decoder.stats.unknownMessages, 1);
    assert.deepEqual(out, [{ name: 'heartbeat', value: examples.heartbeat }]);
  });

  test('messages without a handler are skipped but counted', () => {
    const decoder = new FrameDecoder({});
    decoder.decodeAll(encodeFrame([['heartbeat', examples.heartbeat], ['socketClose', examples.socketClose]]));
    assert.equal(decoder.stats.messages, 2);
  });
});

describe('IP addresses', () => {
  const cases: Array<[string, string]> = [
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['2001:db8::', '2001:db8::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [input, canonical] of cases) {
    test(`${input} is ${canonical}`, () => assert.equal(formatIp(parseIp(input), 0), canonical));
  }
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '256.0.0.0', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::', ':::', '1:2:3:4:5:6:7::8:9', 'localhost']) {
    test(`${JSON.stringify(bad)} is refused`, () => assert.throws(() => parseIp(bad), RangeError));
  }
});

describe('schema checks', () => {
  test('duplicate ids, duplicate names and reserved ids are refused', () => {
    const m = (id: number, name: string): MessageSpec => ({ id, name, doc: '', fields: [] });
    assert.throws(() => compileSchema([m(1, 'a'), m(1, 'b')]), /used twice/);
    assert.throws(() => compileSchema([m(1, 'a'), m(2, 'a')]), /used twice/);
    assert.throws(() => compileSchema([m(64, 'dns')]), /reserved for DNS/);
    assert.throws(() => compileSchema([m(3, 'bad name')]), /not an identifier/);
  });
});
