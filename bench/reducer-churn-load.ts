// The load generator for bench/reducer's connection_churn case: two synthetic collectors in this
// process (run on the other core), one for the client ends and one for the server ends of short
// TCP connections. Each connection is, from each end: socketOpen, socketAddress, socketStats,
// socketClose. Two batches of distinct connections (their own socket ids and client addresses)
// are encoded once and written in turn, so that a four-tuple comes back only long after its
// connection ended. Usage: node reducer-churn-load.js PORT CONNECTIONS_PER_BATCH SECONDS

import { FrameEncoder, SocketProtocol, SocketRole } from '@ebpf-net/protocol';
import { SyntheticCollector } from '@ebpf-net/reducer/testing';

const [port, perBatch, seconds] = process.argv.slice(2).map(Number) as [number, number, number];
const CLIENT_PIDS = 10;
const SERVER_PID = 200;

/** One end's four messages for each connection of batch `b`. */
function encodeBatch(b: number, side: 'client' | 'server'): Uint8Array {
  const encoder = new FrameEncoder();
  for (let i = 0; i < perBatch; i++) {
    const socketId = b * perBatch + i + 1;
    const clientAddr = `10.${1 + 2 * b}.${(i >> 8) & 255}.${i & 255}`;
    const clientPort = 20000 + (i % 40000);
    const client = side === 'client';
    encoder.write('socketOpen', { socketId, pid: client ? 100 + (i % CLIENT_PIDS) : SERVER_PID, protocol: SocketProtocol.TCP, family: 2, flags: 0 });
    encoder.write('socketAddress', {
      socketId,
      localAddr: client ? clientAddr : '10.2.0.1',
      remoteAddr: client ? '10.2.0.1' : clientAddr,
      localPort: client ? clientPort : 443,
      remotePort: client ? 443 : clientPort,
      role: client ? SocketRole.CLIENT : SocketRole.SERVER,
    });
    encoder.write('socketStats', { socketId, bytesSent: client ? 80 : 600, bytesReceived: client ? 600 : 80, segmentsSent: 3, segmentsReceived: 3, retransmits: 0, srttUs: 40 });
    encoder.write('socketClose', { socketId, cause: 0 });
  }
  return encoder.finish();
}

const client = new SyntheticCollector({ port, nodeId: 'churn-client' });
const server = new SyntheticCollector({ port, nodeId: 'churn-server' });
await client.connect();
await server.connect();
for (let p = 0; p < CLIENT_PIDS; p++) client.send('processStart', { pid: 100 + p, ppid: 1, cgroupId: 0, startTimeNs: 0, flags: 0, comm: 'wrk', cmdline: 'wrk' });
server.send('processStart', { pid: SERVER_PID, ppid: 1, cgroupId: 0, startTimeNs: 0, flags: 0, comm: 'nginx', cmdline: 'nginx' });
await Promise.all([client.flush(), server.flush()]);
const batches = [0, 1].map((b) => ({ client: encodeBatch(b, 'client'), server: encodeBatch(b, 'server') }));
const end = Date.now() + seconds * 1000;
for (let n = 0; Date.now() < end; n++) {
  const batch = batches[n % 2]!;
  await Promise.all([client.writeRaw(batch.client), server.writeRaw(batch.server)]);
}
await client.close();
await server.close();
