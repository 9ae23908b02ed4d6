// The stream decoder on TCP-like input: chunks split at any byte, frames that wait for more
// bytes, and every kind of malformed stream reported as a ProtocolError with its offset.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FRAME_HEADER_SIZE, FrameEncoder, MAGIC, type MessageName, ProtocolError, StreamDecoder } from '../src/index.js';
import { examples } from './examples.js';
import { type Decoded, collectingHandlers, prng } from './helpers.js';

/** A realistic stream: the handshake, then every message a few times, over several frames. */
function sampleStream(): { bytes: Buffer; messages: Decoded[] } {
  const encoder = new FrameEncoder({ targetFrameBytes: 300 });
  const messages: Decoded[] = [];
  const put = (name: MessageName, value: Record<string, unknown>) => {
    encoder.writeAny(name, value);
    messages.push({ name, value });
  };
  put('handshake', examples.handshake);
  for (let round = 0; round < 3; round++) {
    for (const [name, value] of Object.entries(examples)) {
      if (name !== 'handshake') put(name as MessageName, value as Record<string, unknown>);
    }
  }
  return { bytes: Buffer.from(encoder.finish()), messages };
}

function decodeChunks(chunks: Uint8Array[]): Decoded[] {
  const out: Decoded[] = [];
  const decoder = new StreamDecoder(collectingHandlers(out));
  for (const chunk of chunks) decoder.push(chunk);
  assert.equal(decoder.bufferedBytes, 0, 'nothing left over');
  return out;
}

function expectError(bytes: Uint8Array, code: string, offset: number, options = {}): void {
  const decoder = new StreamDecoder({}, options);
  assert.throws(
    () => decoder.push(bytes),
    (e: unknown) => {
      assert.ok(e instanceof ProtocolError, `a ProtocolError, not ${String(e)}`);
      assert.equal(e.code, code);
      assert.equal(e.offset, offset);
      return true;
    },
  );
}

describe('split streams', () => {
  const { bytes, messages } = sampleStream();

  test('the sample spans several frames', () => {
    const decoder = new StreamDecoder({});
    decoder.push(bytes);
    assert.ok(decoder.stats.frames >= 4, `${decoder.stats.frames} frames`);
  });

  test('split in two at every byte position, the stream decodes the same', () => {
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(decodeChunks([bytes.subarray(0, i), bytes.subarray(i)]), messages, `split at ${i}`);
    }
  });

  test('fed one byte at a time, the stream decodes the same', () => {
    const chunks = [...bytes].map((b) => Uint8Array.of(b));
    assert.deepEqual(decodeChunks(chunks), messages);
  });

  test('random chunk sizes decode the same', () => {
    const random = prng(7);
    for (let trial = 0; trial < 200; trial++) {
      const chunks: Uint8Array[] = [];
      for (let p = 0; p < bytes.length; ) {
        const n = Math.floor(random() * 64);
        chunks.push(bytes.subarray(p, p + n));
        p += n;
      }
      assert.deepEqual(decodeChunks(chunks), messages, `trial ${trial}`);
    }
  });

  test('a truncated frame waits for its bytes', () => {
    const out: Decoded[] = [];
    const decoder = new StreamDecoder(collectingHandlers(out));
    decoder.push(bytes.subarray(0, 20));
    assert.equal(out.length, 0);
    assert.equal(decoder.bufferedBytes, 20);
    assert.equal(decoder.offset, 20);
    decoder.push(bytes.subarray(20));
    assert.deepEqual(out, messages);
  });
});

describe('malformed streams', () => {
  const handshakeFrame = () => {
    const encoder = new FrameEncoder();
    encoder.write('handshake', examples.handshake);
    return Buffer.from(encoder.finish());
  };
  const frameOf = (name: MessageName) => {
    const encoder = new FrameEncoder();
    encoder.writeAny(name, examples[name] as Record<string, unknown>);
    return Buffer.from(encoder.finish());
  };

  test('a stream that does not start with a handshake is refused', () => {
    expectError(frameOf('heartbeat'), 'HANDSHAKE_EXPECTED', FRAME_HEADER_SIZE);
  });

  test('a bad magic is refused at the magic field', () => {
    const bytes = handshakeFrame();
    bytes.writeUInt32LE(MAGIC ^ 1, FRAME_HEADER_SIZE + 4);
    expectError(bytes, 'BAD_MAGIC', FRAME_HEADER_SIZE + 4);
  });

  test('another protocol version is refused at the version field', () => {
    const bytes = handshakeFrame();
    bytes.writeUInt16LE(99, FRAME_HEADER_SIZE + 8);
    expectError(bytes, 'BAD_VERSION', FRAME_HEADER_SIZE + 8);
  });

  test('a second handshake is refused', () => {
    const first = handshakeFrame();
    expectError(Buffer.concat([first, handshakeFrame()]), 'DUPLICATE_HANDSHAKE', first.length);
  });

  test('an oversized frame is refused as soon as its header arrives', () => {
    const header = Buffer.from([0, 0, 0, 1, 1, 0, 0x4e, 0xeb]); // 16 MiB body
    expectError(Buffer.concat([handshakeFrame(), header]), 'FRAME_TOO_LARGE', handshakeFrame().length);
  });

  test('the frame limit is configurable', () => {
    expectError(Buffer.concat([handshakeFrame(), frameOf('containerInfo')]), 'FRAME_TOO_LARGE', handshakeFrame().length, { maxFrameBytes: 200 });
  });

  test('garbage after good frames is refused at its offset, after the good frames were delivered', () => {
    const good = Buffer.concat([handshakeFrame(), frameOf('socketStats')]);
    const out: Decoded[] = [];
    const decoder = new StreamDecoder(collectingHandlers(out));
    assert.throws(
      () => decoder.push(Buffer.concat([good, Buffer.from('GET / HTTP/1.1\r\n\r\n')])),
      (e: unknown) => e instanceof ProtocolError && e.code === 'BAD_FRAME_SYNC' && e.offset === good.length,
    );
    assert.deepEqual(out.map((d) => d.name), ['handshake', 'socketStats']);
  });

  test('a frame whose messages do not fill it is refused', () => {
    const bytes = Buffer.concat([frameOf('heartbeat'), Buffer.alloc(4)]);
    bytes.writeUInt32LE(bytes.readUInt32LE(0) + 4, 0);
    expectError(bytes, 'BAD_FRAME', bytes.length - 4, { expectHandshake: false });
  });

  test('a frame announcing more messages than it holds is refused', () => {
    const bytes = frameOf('heartbeat');
    bytes.writeUInt16LE(2, 4);
    expectError(bytes, 'BAD_FRAME', bytes.length, { expectHandshake: false });
  });
});
