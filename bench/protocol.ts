// bench/protocol: encode and decode throughput of the wire protocol, one core.
//
// Prints one JSON line per figure. Decoding is compared, in the same run, with a hand-written
// DataView loop over the same bytes (the fastest a decoder could be), as a ratio.
//   node bench/dist/protocol.js [--messages N] [--rounds R]

import { FRAME_HEADER_SIZE, FrameEncoder, MAGIC, PROTOCOL_VERSION, type MessageInput, type MessageName, StreamDecoder } from '@ebpf-net/protocol';
import { emit, median, parseBenchArgs, timeIt } from './report.js';

const { messages: N, rounds } = parseBenchArgs({ messages: 1_000_000, rounds: 7 });
const CHUNK = 64 * 1024; // what a TCP read typically hands over

const stats: MessageInput<'socketStats'> = {
  socketId: 0,
  bytesSent: 0,
  bytesReceived: 0,
  segmentsSent: 0,
  segmentsReceived: 0,
  retransmits: 0,
  srttUs: 250,
};

function encodeStats(encoder: FrameEncoder, n: number): void {
  for (let i = 0; i < n; i++) {
    stats.socketId = i & 0xffff;
    stats.bytesSent = i * 1448;
    stats.bytesReceived = i;
    stats.segmentsSent = i & 0xff;
    stats.segmentsReceived = i & 0x7f;
    encoder.write('socketStats', stats);
  }
}

/** A realistic mix: mostly stats, some socket lifecycle, UDP and process events. */
const mix: Array<[MessageName, Record<string, unknown>]> = (() => {
  const socket = { socketId: 1, pid: 4242, protocol: 6, family: 2, flags: 0 };
  const address = { socketId: 1, localAddr: '10.0.0.1', remoteAddr: '10.0.0.2', localPort: 40000, remotePort: 443, role: 1 };
  const udp = { socketId: 2, remoteAddr: '10.0.0.53', bytesSent: 60, bytesReceived: 200, packetsSent: 1, packetsReceived: 1, remotePort: 53 };
  const proc = { pid: 4242, ppid: 1, cgroupId: 1234, startTimeNs: 1e12, flags: 0, comm: 'curl', cmdline: 'curl -s http://10.0.0.2/' };
  const out: Array<[MessageName, Record<string, unknown>]> = [];
  for (let i = 0; i < 80; i++) out.push(['socketStats', stats]);
  for (let i = 0; i < 5; i++) out.push(['socketOpen', socket], ['socketAddress', address], ['socketClose', { socketId: 1, cause: 0 }]);
  for (let i = 0; i < 3; i++) out.push(['udpStats', udp]);
  out.push(['processStart', proc], ['processExit', { pid: 4242, exitCode: 0, timestampNs: 2e12 }]);
  return out;
})();

function encodeMix(encoder: FrameEncoder, n: number): void {
  for (let i = 0; i < n; i++) {
    const [name, value] = mix[i % mix.length]!;
    encoder.writeAny(name, value);
  }
}

function chunks(bytes: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < bytes.length; p += CHUNK) out.push(Buffer.from(bytes.buffer, bytes.byteOffset + p, Math.min(CHUNK, bytes.length - p)));
  return out;
}

function handshake(): Buffer {
  const encoder = new FrameEncoder();
  encoder.write('handshake', {
    magic: MAGIC, protocolVersion: PROTOCOL_VERSION, bootTimeMs: 0, sessionId: 1, collectorVersion: 'bench', nodeId: 'n', hostname: 'h', kernelRelease: 'k', probes: [],
  });
  return Buffer.from(encoder.finish());
}

let sink = 0;
let sum = 0;

/**
 * One long-lived decoder, as on a collector's connection: it is fed the handshake once, then
 * the payload every round (steady state; its generated code is warm after the first round).
 */
const decoder = new StreamDecoder({
  socketStats: (m) => {
    sum += m.socketId + m.bytesSent + m.bytesReceived + m.segmentsSent + m.segmentsReceived + m.retransmits + m.srttUs;
  },
});
decoder.push(handshake());

/** For the mix, every message is handled and one of its fields read. */
const mixDecoder = new StreamDecoder({
  socketStats: (m) => (sum += m.bytesSent),
  socketOpen: (m) => (sum += m.pid),
  socketAddress: (m) => (sum += m.localAddr.length),
  socketClose: (m) => (sum += m.cause),
  udpStats: (m) => (sum += m.remoteAddr.length),
  processStart: (m) => (sum += m.comm.length),
  processExit: (m) => (sum += m.pid),
});
mixDecoder.push(handshake());

function decodeWith(target: StreamDecoder, input: Buffer[]): number {
  const before = target.stats.messages;
  for (const chunk of input) target.push(chunk);
  sink += sum;
  return target.stats.messages - before;
}

/** The baseline: a hand-written loop that knows the layout and reads the same seven fields. */
function decodeByHand(input: Buffer[]): number {
  let sum = 0;
  let count = 0;
  // Frames never straddle chunks here only because the baseline is given whole frames.
  for (const chunk of input) {
    const v = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let p = 0;
    while (p + FRAME_HEADER_SIZE <= chunk.length) {
      const body = v.getUint32(p, true);
      const n = v.getUint16(p + 4, true);
      let q = p + FRAME_HEADER_SIZE;
      for (let i = 0; i < n; i++) {
        const id = v.getUint16(q, true);
        const len = v.getUint16(q + 2, true);
        if (id === 22) {
          const socketId = v.getUint32(q + 4, true) + v.getUint32(q + 8, true) * 4294967296;
          const bytesSent = v.getUint32(q + 12, true) + v.getUint32(q + 16, true) * 4294967296;
          const bytesReceived = v.getUint32(q + 20, true) + v.getUint32(q + 24, true) * 4294967296;
          sum += socketId + bytesSent + bytesReceived + v.getUint32(q + 28, true) + v.getUint32(q + 32, true) + v.getUint32(q + 36, true) + v.getUint32(q + 40, true);
        }
        q += len;
        count++;
      }
      p += FRAME_HEADER_SIZE + body;
    }
  }
  sink += sum;
  return count;
}

/** Frames re-cut so that each chunk holds whole frames, for the baseline. */
function wholeFrameChunks(bytes: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let p = 0; p < bytes.length; ) {
    let end = p;
    while (end < bytes.length && end - p < CHUNK) end += FRAME_HEADER_SIZE + v.getUint32(end, true);
    out.push(Buffer.from(bytes.buffer, bytes.byteOffset + p, end - p));
    p = end;
  }
  return out;
}

function benchEncode(name: string, encode: (e: FrameEncoder, n: number) => void): Uint8Array {
  const encoder = new FrameEncoder();
  let bytes: Uint8Array = new Uint8Array(0);
  const seconds = median(
    timeIt(rounds, () => {
      encode(encoder, N);
      bytes = encoder.finish();
    }),
  );
  emit({ bench: 'protocol', case: `encode_${name}`, messages: N, messages_per_s: N / seconds, mb_per_s: bytes.length / seconds / 1e6 });
  emit({ bench: 'protocol', case: `size_${name}`, wire_bytes_per_message: bytes.length / N, target: name === 'socket_stats' ? '<= 48' : undefined });
  return bytes;
}

function benchDecode(name: string, bytes: Uint8Array, target: StreamDecoder): number {
  const input = chunks(bytes);
  let decoded = 0;
  const seconds = median(timeIt(rounds, () => (decoded = decodeWith(target, input))));
  if (decoded !== N) throw new Error(`decoded ${decoded} messages, expected ${N}`);
  const rate = N / seconds;
  emit({ bench: 'protocol', case: `decode_${name}`, messages: N, messages_per_s: rate, mb_per_s: bytes.length / seconds / 1e6 });
  return rate;
}

const statsBytes = benchEncode('socket_stats', encodeStats);
const decoderRate = benchDecode('socket_stats', statsBytes, decoder);
const handInput = wholeFrameChunks(statsBytes);
const handSeconds = median(timeIt(rounds, () => decodeByHand(handInput)));
const handRate = N / handSeconds;
emit({ bench: 'protocol', case: 'decode_socket_stats_handwritten_baseline', messages: N, messages_per_s: handRate, mb_per_s: statsBytes.length / handSeconds / 1e6 });
emit({ bench: 'protocol', case: 'decode_socket_stats_ratio', decoder_over_handwritten: decoderRate / handRate, target: '>= 0.333 and >= 10M msg/s' });

const mixBytes = benchEncode('mix', encodeMix);
benchDecode('mix', mixBytes, mixDecoder);
if (sink === 42) console.error(''); // keep the sums alive
