// The load generator for bench/reducer: N synthetic collectors in this process (run on the
// other core), each opening K sockets and then streaming socketStats as fast as the reducer
// takes them. Frames are encoded once and written again and again, so that this side spends
// its time writing, not encoding. Usage: node reducer-load.js PORT COLLECTORS SOCKETS SECONDS

import { FrameEncoder } from '@ebpf-net/protocol';
import { SyntheticCollector } from '@ebpf-net/reducer/testing';

const [port, collectors, sockets, seconds] = process.argv.slice(2).map(Number) as [number, number, number, number];

async function run(index: number): Promise<void> {
  const c = new SyntheticCollector({ port, nodeId: `bench-${index}` });
  await c.connect();
  for (let s = 1; s <= sockets; s++) {
    c.openTcp({ socketId: s, pid: 1000 + (s % 50), local: `10.${index >> 8}.${index & 255}.1`, localPort: 10000 + s, remote: '10.255.0.1', remotePort: 443, role: 'client' });
  }
  await c.flush();
  const encoder = new FrameEncoder();
  const m = { socketId: 0, bytesSent: 1448, bytesReceived: 100, segmentsSent: 1, segmentsReceived: 1, retransmits: 0, srttUs: 150 };
  for (let i = 0; i < 20_000; i++) {
    m.socketId = 1 + (i % sockets);
    encoder.write('socketStats', m);
  }
  const batch = encoder.finish();
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) await c.writeRaw(batch);
  await c.close();
}

await Promise.all(Array.from({ length: collectors }, (_, i) => run(i)));
