// The reducer end to end over real TCP: synthetic collectors in, interval reports out.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CloseCause, EntityFlags, FrameEncoder, MAGIC, SocketProtocol } from '@ebpf-net/protocol';
import type { Reducer } from '../src/index.js';
import type { SeriesPoint } from '../src/outputs/report.js';
import { SyntheticCollector } from '../src/testing/index.js';
import { pastMatchWindow, startReducer, valueOf, waitFor } from './support.js';

const reducers: Reducer[] = [];
after(async () => {
  for (const r of reducers) await r.stop();
});

async function setup(overrides = {}) {
  const reducer = await startReducer(overrides);
  reducers.push(reducer);
  const collector = (nodeId: string, sessionId = 1) => new SyntheticCollector({ port: reducer.intakePort, nodeId, hostname: nodeId, sessionId });
  /** Collectors for these nodes, connected in this order. */
  const connected = async (...nodeIds: string[]): Promise<SyntheticCollector[]> => {
    const all = nodeIds.map((id) => collector(id));
    for (const c of all) await c.connect();
    return all;
  };
  /** Waits until the reducer has applied `n` messages in all. */
  const applied = (n: number) => waitFor(`${n} messages`, () => reducer.intake.stats.messages >= n);
  return { reducer, collector, connected, applied };
}

const clientEnd = { socketId: 1, pid: 100, local: '10.0.0.1', localPort: 40000, remote: '10.0.0.2', remotePort: 80, role: 'client' as const };
const serverEnd = { socketId: 7, pid: 200, local: '10.0.0.2', localPort: 80, remote: '10.0.0.1', remotePort: 40000, role: 'server' as const };

/** A UDP socket bound to a local address, not connected. */
function openUdp(c: SyntheticCollector, socketId: number, pid: number, localAddr: string, localPort: number): void {
  c.send('socketOpen', { socketId, pid, protocol: SocketProtocol.UDP, family: 2, flags: 0 });
  c.send('socketAddress', { socketId, localAddr, remoteAddr: '0.0.0.0', localPort, remotePort: 0, role: 0 });
}

/** UDP socket 3 of node-a (10.0.0.1:5353) and socket 4 of node-b (10.0.0.2:53), each with the other as its remote. */
const dnsClient = { socketId: 3, remoteAddr: '10.0.0.2', remotePort: 53 };
const dnsServer = { socketId: 4, remoteAddr: '10.0.0.1', remotePort: 5353 };

function udpStats(c: SyntheticCollector, side: typeof dnsClient, bytesSent: number, bytesReceived: number, packetsSent: number, packetsReceived: number): void {
  c.send('udpStats', { ...side, bytesSent, bytesReceived, packetsSent, packetsReceived });
}

function bytesPoints(points: readonly SeriesPoint[]): SeriesPoint[] {
  return points.filter((p) => p.metric.name === 'tcp_bytes');
}

describe('matching', () => {
  test('two collectors reporting the two ends of one connection give one flow with both sides', async () => {
    const { reducer, connected, applied } = await setup();
    const [a, b] = await connected('node-a', 'node-b');
    a.openTcp(clientEnd, 'curl');
    a.stats(1, 1000, 5000, 200);
    b.openTcp(serverEnd, 'nginx');
    b.stats(7, 5000, 1000, 300);
    await a.flush();
    await b.flush();
    await applied(2 + 2 * 4);

    assert.equal(reducer.flows.tcp.size, 1);
    const flow = [...reducer.flows.tcp.values()][0]!;
    assert.equal(flow.client?.node.nodeId, 'node-a');
    assert.equal(flow.server?.node.nodeId, 'node-b');

    const { points } = reducer.tick();
    const forward = { aggregation: 'process', source_node: 'node-a', source_process: 'curl', dest_node: 'node-b', dest_process: 'nginx' };
    const backward = { aggregation: 'process', source_node: 'node-b', source_process: 'nginx', dest_node: 'node-a', dest_process: 'curl' };
    assert.equal(valueOf(points, 'tcp_bytes', forward), 1000);
    assert.equal(valueOf(points, 'tcp_bytes', backward), 5000);
    assert.equal(valueOf(points, 'tcp_new_sockets', forward), 1, 'one connection, counted once though both ends saw it');
    assert.equal(valueOf(points, 'tcp_active', forward), 1);
    assert.equal(valueOf(points, 'tcp_rtt_average_seconds', forward), 0.0002);
    assert.equal(valueOf(points, 'tcp_rtt_average_seconds', backward), 0.0003);
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'node', source_node: 'node-a', dest_node: 'node-b' }), 1000);
    await a.close();
    await b.close();
  });

  test('an end with no partner is a flow to its peer address, counted from that one end', async () => {
    const { reducer, collector, applied } = await setup();
    const a = collector('node-a');
    await a.connect();
    a.openTcp(clientEnd, 'curl');
    a.stats(1, 1000, 5000);
    await a.flush();
    await applied(1 + 4);
    assert.equal(valueOf(reducer.tick().points, 'tcp_bytes', { aggregation: 'node', source_node: 'node-a', dest_node: '10.0.0.2' }), undefined, 'held back for its other end');
    const { points } = reducer.tick(pastMatchWindow());
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'node', source_node: 'node-a', dest_node: '10.0.0.2' }), 1000);
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'node', source_node: '10.0.0.2', dest_node: 'node-a' }), 5000, "the peer's sending, as received here");
    await a.close();
  });

  test('ends of one connection reported in different intervals are counted once, with both ends named', async () => {
    const { reducer, connected, applied } = await setup();
    const [a, b] = await connected('node-a', 'node-b');
    a.openTcp(clientEnd, 'curl');
    a.stats(1, 1000, 5000);
    a.send('socketClose', { socketId: 1, cause: CloseCause.NORMAL });
    await a.flush();
    await applied(2 + 5);
    assert.deepEqual(bytesPoints(reducer.tick().points), [], 'the client end waits for the server end');

    b.openTcp(serverEnd, 'nginx');
    b.stats(7, 5000, 1000);
    b.send('socketClose', { socketId: 7, cause: CloseCause.NORMAL });
    await b.flush();
    await applied(2 + 5 + 5);
    const { points } = reducer.tick();
    const forward = { aggregation: 'process', source_node: 'node-a', source_process: 'curl', dest_node: 'node-b', dest_process: 'nginx' };
    assert.equal(valueOf(points, 'tcp_bytes', forward), 1000);
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'process', source_node: 'node-b', source_process: 'nginx', dest_node: 'node-a', dest_process: 'curl' }), 5000);
    assert.equal(valueOf(points, 'tcp_new_sockets', forward), 1);
    assert.deepEqual(bytesPoints(points).filter((p) => p.labels.aggregation === 'node').map((p) => [p.labels.source_node, p.labels.dest_node, p.value]), [['node-a', 'node-b', 1000], ['node-b', 'node-a', 5000]], 'no half-matched flow beside it');
    reducer.tick();
    assert.equal(reducer.flows.tcp.size, 0, 'both ends forgotten once counted');
    await a.close();
    await b.close();
  });

  test('an end that closed and whose process exited, before its peer reported the rest: nothing counted twice, both ends still named', async () => {
    const { reducer, connected, applied } = await setup();
    const [a, b] = await connected('node-a', 'node-b');
    const forward = { aggregation: 'process', source_node: 'node-a', source_process: 'curl', dest_node: 'node-b', dest_process: 'nginx' };
    const backward = { aggregation: 'process', source_node: 'node-b', source_process: 'nginx', dest_node: 'node-a', dest_process: 'curl' };
    // The client sent all 300 bytes; the server's collector has read 200 of them so far.
    a.openTcp(clientEnd, 'curl');
    a.stats(1, 300, 0);
    b.openTcp(serverEnd, 'nginx');
    b.stats(7, 0, 200);
    await a.flush();
    await b.flush();
    await applied(2 + 4 + 4);
    assert.equal(valueOf(reducer.tick().points, 'tcp_bytes', forward), 300);

    // The client got the 120-byte answer, closed, and its process exited ...
    a.stats(1, 0, 120);
    a.send('processExit', { pid: clientEnd.pid, exitCode: 0, timestampNs: 0 });
    a.send('socketClose', { socketId: 1, cause: CloseCause.NORMAL });
    await a.flush();
    await applied(2 + 8 + 3);
    let points = reducer.tick().points;
    assert.equal(valueOf(points, 'tcp_bytes', forward), 300);
    assert.equal(valueOf(points, 'tcp_bytes', backward), 0, 'the answer is counted by its sender, whose report is late');

    // ... before the server's collector reported the last 100 bytes received and the answer.
    b.stats(7, 120, 100);
    b.send('socketClose', { socketId: 7, cause: CloseCause.NORMAL });
    await b.flush();
    await applied(2 + 8 + 3 + 2);
    points = reducer.tick().points;
    const totals = bytesPoints(points).map((p) => [p.labels.aggregation, p.labels.source_process ?? '-', p.labels.dest_process ?? '-', p.value]);
    assert.deepEqual(totals, [['node', '-', '-', 300], ['node', '-', '-', 120], ['process', 'curl', 'nginx', 300], ['process', 'nginx', 'curl', 120]],
      'the last 100 bytes were counted by the client, which sent them; the answer names the exited client process');
    reducer.tick();
    assert.equal(reducer.flows.tcp.size, 0, 'both ends forgotten once the second one closed');
    assert.equal(reducer.registry.nodes.get('node-a')?.processes.get(clientEnd.pid), undefined, 'and the exited process with its last socket');
    await a.close();
    await b.close();
  });

  test('an end whose owner the collector corrects is named by the new owner from the next interval', async () => {
    const { reducer, connected, applied } = await setup();
    const [a, b] = await connected('node-a', 'node-b');
    a.openTcp(clientEnd, 'curl');
    a.stats(1, 10, 0);
    b.send('processStart', { pid: 201, ppid: 1, cgroupId: 0, startTimeNs: 0, flags: 0, comm: 'worker', cmdline: 'worker' });
    b.openTcp(serverEnd, 'nginx'); // the listener's owner: the collector's guess for an accepted socket
    await a.flush();
    await b.flush();
    await applied(2 + 4 + 4);
    const to = (dest: string) => ({ aggregation: 'process', source_process: 'curl', dest_node: 'node-b', dest_process: dest });
    assert.equal(valueOf(reducer.tick().points, 'tcp_bytes', to('nginx')), 10);

    b.send('socketOpen', { socketId: serverEnd.socketId, pid: 201, protocol: SocketProtocol.TCP, family: 2, flags: 0 });
    a.stats(1, 5, 0);
    await a.flush();
    await b.flush();
    await applied(2 + 4 + 4 + 2);
    const { points } = reducer.tick();
    assert.equal(valueOf(points, 'tcp_bytes', to('worker')), 5);
    assert.equal(valueOf(points, 'tcp_bytes', to('nginx')), 10, 'the earlier bytes stay where they were counted');
    await a.close();
    await b.close();
  });

  test('the same four-tuple reused within one interval, seen from both ends: each connection is counted', async () => {
    const { reducer, connected, applied } = await setup({ levels: ['node'] });
    const [a, b] = await connected('node-a', 'node-b');
    for (const [n, sent] of [[0, 100], [1, 200]] as const) {
      a.openTcp({ ...clientEnd, socketId: 1 + n });
      a.stats(1 + n, sent, sent / 10);
      a.send('socketClose', { socketId: 1 + n, cause: CloseCause.NORMAL });
      b.openTcp({ ...serverEnd, socketId: 7 + n });
      b.stats(7 + n, sent / 10, sent);
      b.send('socketClose', { socketId: 7 + n, cause: CloseCause.NORMAL });
      await a.flush();
      await b.flush();
      await applied(2 + 10 * (n + 1)); // a connection's two ends, then the next one
    }
    assert.equal(reducer.flows.tcp.size, 0, 'a connection whose two ends closed is counted and forgotten at once');
    const { points } = reducer.tick();
    const forward = { source_node: 'node-a', dest_node: 'node-b' };
    assert.equal(valueOf(points, 'tcp_bytes', forward), 300);
    assert.equal(valueOf(points, 'tcp_bytes', { source_node: 'node-b', dest_node: 'node-a' }), 30);
    assert.equal(valueOf(points, 'tcp_new_sockets', forward), 2);
    assert.equal(valueOf(points, 'tcp_active', forward), 0);
    await a.close();
    await b.close();
  });

  test('the same four-tuple reused within one interval, seen from one end: the closed connection keeps its bytes', async () => {
    const { reducer, connected, applied } = await setup({ levels: ['node'] });
    const [a] = await connected('node-a');
    for (const [n, sent] of [[0, 100], [1, 200]] as const) {
      a.openTcp({ ...clientEnd, socketId: 1 + n });
      a.stats(1 + n, sent, sent / 10);
      a.send('socketClose', { socketId: 1 + n, cause: CloseCause.NORMAL });
    }
    await a.flush();
    await applied(1 + 2 * 5);
    const { points } = reducer.tick(pastMatchWindow());
    const forward = { source_node: 'node-a', dest_node: '10.0.0.2' };
    assert.equal(valueOf(points, 'tcp_bytes', forward), 300);
    assert.equal(valueOf(points, 'tcp_bytes', { source_node: '10.0.0.2', dest_node: 'node-a' }), 30);
    assert.equal(valueOf(points, 'tcp_new_sockets', forward), 2);
    reducer.tick(pastMatchWindow());
    assert.equal(reducer.flows.tcp.size, 0);
    await a.close();
  });

  test('an end that joins a flow already counted alone names that side from then on', async () => {
    const { reducer, connected, applied } = await setup();
    const [a, b] = await connected('node-a', 'node-b');
    b.send('processStart', { pid: serverEnd.pid, ppid: 1, cgroupId: 0, startTimeNs: 0, flags: 0, comm: 'nginx', cmdline: 'nginx' });
    a.openTcp(clientEnd, 'curl');
    a.stats(1, 100, 0);
    await a.flush();
    await b.flush();
    await applied(2 + 1 + 4);
    const alone = { aggregation: 'process', source_node: 'node-a', source_process: 'curl', dest_node: '10.0.0.2', dest_process: '' };
    assert.equal(valueOf(reducer.tick(pastMatchWindow()).points, 'tcp_bytes', alone), 100, 'counted alone once the window passed');

    b.send('socketOpen', { socketId: serverEnd.socketId, pid: serverEnd.pid, protocol: SocketProtocol.TCP, family: 2, flags: EntityFlags.PREEXISTING });
    b.send('socketAddress', { socketId: serverEnd.socketId, localAddr: serverEnd.local, remoteAddr: serverEnd.remote, localPort: serverEnd.localPort, remotePort: serverEnd.remotePort, role: 2 });
    a.stats(1, 30, 0);
    await a.flush();
    await b.flush();
    await applied(2 + 1 + 4 + 3);
    const { points } = reducer.tick(pastMatchWindow());
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'process', source_node: 'node-a', source_process: 'curl', dest_node: 'node-b', dest_process: 'nginx' }), 30);
    assert.equal(valueOf(points, 'tcp_bytes', alone), 100, 'the earlier bytes stay where they were counted');
    await a.close();
    await b.close();
  });

  test('a peer address is named by the node that reported it as local', async () => {
    const { reducer, connected, applied } = await setup();
    const [a, b] = await connected('node-a', 'node-b');
    b.openTcp({ ...serverEnd, socketId: 9, remote: '10.0.0.9', remotePort: 5555 }); // teaches 10.0.0.2 = node-b
    a.openTcp(clientEnd);
    a.stats(1, 10, 20);
    await b.flush();
    await a.flush();
    await applied(2 + 3 + 4);
    const { points } = reducer.tick(pastMatchWindow());
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'node', source_node: 'node-a', dest_node: 'node-b' }), 10);
    await a.close();
    await b.close();
  });

  test('a peer address learned later names the flow to it from then on', async () => {
    const { reducer, connected, applied } = await setup({ levels: ['node'] });
    const [a, b] = await connected('node-a', 'node-b');
    a.openTcp(clientEnd);
    a.stats(1, 10, 0);
    await a.flush();
    await applied(2 + 4);
    assert.equal(valueOf(reducer.tick(pastMatchWindow()).points, 'tcp_bytes', { source_node: 'node-a', dest_node: '10.0.0.2' }), 10);
    // A socket of node-b's (no process message: nothing else changes) teaches 10.0.0.2 = node-b.
    b.send('socketOpen', { socketId: 9, pid: serverEnd.pid, protocol: SocketProtocol.TCP, family: 2, flags: 0 });
    b.send('socketAddress', { socketId: 9, localAddr: serverEnd.local, remoteAddr: '10.0.0.9', localPort: serverEnd.localPort, remotePort: 5555, role: 2 });
    a.stats(1, 5, 0);
    await b.flush();
    await a.flush();
    await applied(2 + 4 + 2 + 1);
    assert.equal(valueOf(reducer.tick(pastMatchWindow()).points, 'tcp_bytes', { source_node: 'node-a', dest_node: 'node-b' }), 5);
    await a.close();
    await b.close();
  });

  test('loopback flows of different nodes stay apart', async () => {
    const { reducer, collector, applied } = await setup();
    const lo = { local: '127.0.0.1', remote: '127.0.0.1' };
    for (const node of ['node-a', 'node-b']) {
      const c = collector(node);
      await c.connect();
      c.openTcp({ ...clientEnd, ...lo });
      c.openTcp({ ...serverEnd, ...lo, remotePort: clientEnd.localPort, localPort: clientEnd.remotePort });
      c.stats(clientEnd.socketId, 11, 22);
      c.stats(serverEnd.socketId, 22, 11);
      await c.flush();
    }
    await applied(2 + 2 * 8);
    assert.equal(reducer.flows.tcp.size, 2);
    const { points } = reducer.tick();
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'node', source_node: 'node-a', dest_node: 'node-a' }), 11 + 22);
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'node', source_node: 'node-b', dest_node: 'node-b' }), 11 + 22);
  });

  test('UDP: both sides of an address pair meet, each direction counted once', async () => {
    const { reducer, connected, applied } = await setup();
    const [a, b] = await connected('node-a', 'node-b');
    openUdp(a, dnsClient.socketId, 1, '10.0.0.1', 5353);
    udpStats(a, dnsClient, 40, 120, 1, 1);
    openUdp(b, dnsServer.socketId, 2, '10.0.0.2', 53);
    udpStats(b, dnsServer, 120, 40, 1, 1);
    await a.flush();
    await b.flush();
    await applied(2 + 6);
    assert.equal(reducer.flows.udp.size, 1);
    const { points } = reducer.tick();
    assert.equal(valueOf(points, 'udp_bytes', { aggregation: 'node', source_node: 'node-a', dest_node: 'node-b' }), 40);
    assert.equal(valueOf(points, 'udp_bytes', { aggregation: 'node', source_node: 'node-b', dest_node: 'node-a' }), 120);
    assert.equal(valueOf(points, 'udp_packets', { aggregation: 'node', source_node: 'node-a', dest_node: 'node-b' }), 1);
  });

  /** node-a's DNS client sent a query; node-b's server has read some of it so far. One interval ends. */
  async function dnsQuery(q: { sent: number; packets: number; read: number; readPackets: number }, overrides = {}) {
    const { reducer, connected, applied } = await setup({ levels: ['node'], ...overrides });
    const [a, b] = await connected('node-a', 'node-b');
    const aToB = { source_node: 'node-a', dest_node: 'node-b' };
    openUdp(a, dnsClient.socketId, 1, '10.0.0.1', 5353);
    udpStats(a, dnsClient, q.sent, 0, q.packets, 0);
    openUdp(b, dnsServer.socketId, 2, '10.0.0.2', 53);
    udpStats(b, dnsServer, 0, q.read, 0, q.readPackets);
    await a.flush();
    await b.flush();
    await applied(2 + 6);
    assert.equal(valueOf(reducer.tick().points, 'udp_bytes', aToB), q.sent);
    return { reducer, a: a!, b: b!, applied, aToB };
  }

  test('UDP: a side whose socket closed before the other side reported receiving its datagrams is not counted twice', async () => {
    const { reducer, a, b, applied, aToB } = await dnsQuery({ sent: 40, packets: 2, read: 20, readPackets: 1 });

    a.send('socketClose', { socketId: 3, cause: CloseCause.NORMAL });
    udpStats(b, dnsServer, 60, 0, 1, 0);
    await a.flush();
    await b.flush();
    await applied(2 + 8);
    reducer.tick(); // the closed socket is forgotten

    udpStats(b, dnsServer, 60, 20, 1, 1);
    await b.flush();
    await applied(2 + 9);
    const { points } = reducer.tick();
    assert.equal(valueOf(points, 'udp_bytes', aToB), 40, 'the second datagram was counted by its sender');
    assert.equal(valueOf(points, 'udp_packets', aToB), 2);
    assert.equal(valueOf(points, 'udp_bytes', { source_node: 'node-b', dest_node: 'node-a' }), 120, 'the answer, to the address node-a reported as its own');
    await a.close();
    await b.close();
  });

  test('UDP: a side whose collector is gone is counted from the other side again', async () => {
    const { reducer, a, b, applied } = await dnsQuery({ sent: 40, packets: 1, read: 40, readPackets: 1 }, { nodeGraceMs: 0 });

    a.destroy();
    udpStats(b, dnsServer, 10, 0, 1, 0);
    await b.flush();
    await applied(2 + 7);
    await waitFor('node-a to disconnect', () => reducer.intake.stats.connections === 1);
    reducer.tick(); // node-a is forgotten (no grace period), with its socket
    udpStats(b, dnsServer, 0, 25, 0, 1);
    await b.flush();
    await applied(2 + 8);
    assert.equal(valueOf(reducer.tick(pastMatchWindow()).points, 'udp_bytes', { source_node: '10.0.0.1', dest_node: 'node-b' }), 25, "what node-b received, named by the address (node-a's is forgotten)");
    await b.close();
  });

  test('resets and SYN timeouts are counted once per connection', async () => {
    const { reducer, connected, applied } = await setup();
    const [a, b] = await connected('node-a', 'node-b');
    a.openTcp(clientEnd);
    a.send('socketClose', { socketId: 1, cause: CloseCause.RESET_RECEIVED });
    b.openTcp(serverEnd);
    b.send('socketClose', { socketId: 7, cause: CloseCause.RESET_SENT });
    a.openTcp({ ...clientEnd, socketId: 2, localPort: 40001, remote: '10.9.9.9' });
    a.send('socketClose', { socketId: 2, cause: CloseCause.SYN_TIMEOUT });
    await a.flush();
    await b.flush();
    await applied(2 + 4 + 4 + 4);
    const { points } = reducer.tick(pastMatchWindow());
    assert.equal(valueOf(points, 'tcp_resets', { aggregation: 'node', source_node: 'node-a', dest_node: 'node-b' }), 1);
    assert.equal(valueOf(points, 'tcp_syn_timeouts', { aggregation: 'node', source_node: 'node-a', dest_node: '10.9.9.9' }), 1);
    assert.equal(valueOf(points, 'tcp_active', { aggregation: 'node', source_node: 'node-a', dest_node: 'node-b' }), 0);
    reducer.tick();
    assert.equal(reducer.flows.tcp.size, 0, 'closed flows are forgotten after the interval that counted them');
  });
});

describe('many collectors', () => {
  test('200 collectors with 5 connections each to one server node give exact totals', async () => {
    const { reducer, collector, applied } = await setup({ levels: ['node'] });
    const server = collector('server');
    await server.connect();
    const clients = Array.from({ length: 200 }, (_, k) => collector(`client-${k}`));
    await Promise.all(clients.map((c) => c.connect()));
    let messages = 201;
    let serverSocket = 1000;
    const expectedUp = new Map<string, number>();
    const expectedDown = new Map<string, number>();
    await Promise.all(
      clients.map(async (c, k) => {
        const addr = `10.1.${k >> 8}.${k & 255}`;
        for (let i = 0; i < 5; i++) {
          const port = 30000 + i;
          c.openTcp({ socketId: i + 1, pid: 10, local: addr, localPort: port, remote: '10.0.0.250', remotePort: 443, role: 'client' });
          server.openTcp({ socketId: serverSocket++, pid: 20, local: '10.0.0.250', localPort: 443, remote: addr, remotePort: port, role: 'server' });
          const up = 100 * (k + 1) + i;
          const down = 7 * up;
          c.stats(i + 1, up, down);
          server.stats(serverSocket - 1, down, up);
          expectedUp.set(c.options.nodeId, (expectedUp.get(c.options.nodeId) ?? 0) + up);
          expectedDown.set(c.options.nodeId, (expectedDown.get(c.options.nodeId) ?? 0) + down);
          messages += 8;
        }
        await c.flush();
      }),
    );
    await server.flush();
    await applied(messages);
    assert.equal(reducer.flows.tcp.size, 1000);
    const { points } = reducer.tick();
    for (const c of clients) {
      const id = c.options.nodeId;
      assert.equal(valueOf(points, 'tcp_bytes', { source_node: id, dest_node: 'server' }), expectedUp.get(id));
      assert.equal(valueOf(points, 'tcp_bytes', { source_node: 'server', dest_node: id }), expectedDown.get(id));
      assert.equal(valueOf(points, 'tcp_active', { source_node: id, dest_node: 'server' }), 5);
    }
    assert.equal(valueOf(points, 'ebpf_net_reducer_collectors', {}), 201);
    await Promise.all([server, ...clients].map((c) => c.close()));
  });
});

describe('robustness', () => {
  test('garbage and truncated streams from one peer leave the others unaffected', async () => {
    const { reducer, collector, applied } = await setup();
    const a = collector('node-a');
    const b = collector('node-b');
    const bad = collector('node-bad');
    const truncated = collector('node-truncated');
    await Promise.all([a.connect(), b.connect(), bad.connect(), truncated.connect()]);
    a.openTcp(clientEnd);
    b.openTcp(serverEnd);
    await a.flush();
    await b.flush();
    await applied(4 + 6);

    await bad.writeRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await bad.closed();
    assert.equal(reducer.intake.stats.decodeErrors.BAD_FRAME_SYNC, 1);
    const half = new FrameEncoder();
    half.write('heartbeat', { timestampMs: 1 });
    await truncated.writeRaw(half.finish().subarray(0, 9));
    truncated.destroy();

    a.stats(1, 300, 400);
    b.stats(7, 400, 300);
    await a.flush();
    await b.flush();
    await applied(4 + 6 + 2);
    const { points } = reducer.tick();
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'node', source_node: 'node-a', dest_node: 'node-b' }), 300);
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'node', source_node: 'node-b', dest_node: 'node-a' }), 400);
    assert.equal(valueOf(points, 'ebpf_net_reducer_decode_errors', { code: 'BAD_FRAME_SYNC' }), 1);
    await a.close();
    await b.close();
  });

  test('another protocol version is refused and counted', async () => {
    const { reducer } = await setup();
    const c = new SyntheticCollector({ port: reducer.intakePort, nodeId: 'old' });
    const encoder = new FrameEncoder();
    encoder.write('handshake', { magic: MAGIC, protocolVersion: 99, bootTimeMs: 0, sessionId: 1, collectorVersion: 'x', nodeId: 'old', hostname: 'old', kernelRelease: '', probes: [] });
    const { connect } = await import('node:net');
    const socket = connect({ host: '127.0.0.1', port: reducer.intakePort });
    await new Promise((r) => socket.once('connect', r));
    socket.write(encoder.finish());
    await new Promise((r) => socket.once('close', r));
    assert.equal(reducer.intake.stats.decodeErrors.BAD_VERSION, 1);
    void c;
  });

  test('a silent connection is closed after the heartbeat timeout', async () => {
    const { reducer, collector } = await setup({ heartbeatTimeoutMs: 300 });
    const c = collector('quiet');
    await c.connect();
    const started = Date.now();
    await c.closed();
    assert.ok(Date.now() - started >= 250, 'not before the timeout');
    assert.equal(reducer.intake.stats.heartbeatTimeouts, 1);
  });

  test('past --max-series, new pairs go to the overflow series and are counted', async () => {
    const { reducer, collector, applied } = await setup({ levels: ['node'], maxSeries: 4 });
    const a = collector('node-a');
    await a.connect();
    for (let i = 0; i < 5; i++) {
      a.openTcp({ ...clientEnd, socketId: i + 1, localPort: 40000 + i, remote: `10.0.1.${i}` });
      a.stats(i + 1, 10, 0);
    }
    await a.flush();
    await applied(1 + 5 * 4);
    const { points } = reducer.tick(pastMatchWindow());
    const bytes = points.filter((p) => p.metric.name === 'tcp_bytes');
    assert.equal(bytes.length, 4 + 1, 'four series and the overflow series');
    assert.equal(valueOf(points, 'tcp_bytes', { source_node: '__overflow__' }), 30, 'the overflowed pairs keep their bytes');
    assert.ok(reducer.aggregator.series.overflowed > 0);
    await a.close();
  });
});

describe('state', () => {
  test('containers and pods label flows at the container and workload levels', async () => {
    const { reducer, connected, applied } = await setup({ levels: ['container', 'workload'] });
    const [a, b] = await connected('node-a', 'node-b');
    const pod = (c: SyntheticCollector, cgroupId: number, name: string, podName: string) =>
      c.send('containerInfo', { cgroupId, runtime: 2, containerId: `id-${name}`, name, image: `${name}:1`, podName, podNamespace: 'shop', podUid: `uid-${name}`, cgroupPath: '' });
    pod(a, 11, 'frontend', 'frontend-7d9c8b6f5-x2x9q');
    a.send('processStart', { pid: 100, ppid: 1, cgroupId: 11, startTimeNs: 0, flags: 0, comm: 'node', cmdline: 'node server.js' });
    pod(b, 22, 'db', 'db-0');
    b.send('processStart', { pid: 200, ppid: 1, cgroupId: 22, startTimeNs: 0, flags: 0, comm: 'postgres', cmdline: 'postgres' });
    for (const [c, end] of [[a, clientEnd], [b, serverEnd]] as const) {
      c.send('socketOpen', { socketId: end.socketId, pid: end.pid, protocol: SocketProtocol.TCP, family: 2, flags: 0 });
      c.send('socketAddress', { socketId: end.socketId, localAddr: end.local, remoteAddr: end.remote, localPort: end.localPort, remotePort: end.remotePort, role: end.role === 'client' ? 1 : 2 });
      c.stats(end.socketId, 10, 20);
    }
    await a.flush();
    await b.flush();
    await applied(2 + 2 * 5);
    const { points } = reducer.tick();
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'container', source_container: 'frontend', dest_container: 'db' }), 10);
    assert.equal(valueOf(points, 'tcp_bytes', { aggregation: 'workload', source_namespace: 'shop', source_workload: 'frontend', dest_namespace: 'shop', dest_workload: 'db' }), 10);
    await a.close();
    await b.close();
  });

  test('a node whose collector stays away past the grace period is forgotten, with its flows', async () => {
    const { reducer, collector, applied } = await setup({ nodeGraceMs: 100 });
    const a = collector('node-a');
    await a.connect();
    a.openTcp(clientEnd);
    await a.flush();
    await applied(1 + 3);
    a.destroy();
    await waitFor('disconnect', () => reducer.intake.stats.connections === 0);
    reducer.tick();
    assert.equal(reducer.registry.nodes.size, 1, 'kept during the grace period');
    await new Promise((r) => setTimeout(r, 150));
    reducer.tick();
    assert.equal(reducer.registry.nodes.size, 0);
    assert.equal(reducer.flows.tcp.size, 0);
  });
});

describe('restarts', () => {
  test('a reconnect with a snapshot counts nothing twice; a restarted collector starts afresh', async () => {
    const { reducer, collector, applied } = await setup({ levels: ['node'] });
    const forward = { source_node: 'node-a', dest_node: '10.0.0.2' };
    let a = collector('node-a', 1);
    await a.connect();
    a.openTcp(clientEnd);
    a.stats(1, 100, 0);
    await a.flush();
    await applied(1 + 4);
    assert.equal(valueOf(reducer.tick(pastMatchWindow()).points, 'tcp_bytes', forward), 100);
    a.destroy();
    await waitFor('disconnect', () => reducer.intake.stats.connections === 0);

    // Same collector process, new connection: snapshot, then more traffic.
    a = collector('node-a', 1);
    await a.connect();
    a.send('snapshotBegin', { timestampMs: 0 });
    a.openTcp({ ...clientEnd, flags: EntityFlags.SNAPSHOT });
    a.send('snapshotEnd', { timestampMs: 0 });
    a.stats(1, 50, 0);
    await a.flush();
    await applied(5 + 7); // handshake, process, open, address, stats; then handshake, begin, 3 for the socket, end, stats
    let points = reducer.tick(pastMatchWindow()).points;
    assert.equal(valueOf(points, 'tcp_bytes', forward), 150);
    assert.equal(valueOf(points, 'tcp_new_sockets', forward), 1);
    a.destroy();
    await waitFor('disconnect', () => reducer.intake.stats.connections === 0);

    // The collector restarted (new session): it reports the connection as pre-existing, under a new id.
    a = collector('node-a', 2);
    await a.connect();
    a.openTcp({ ...clientEnd, socketId: 77, flags: EntityFlags.PREEXISTING });
    a.stats(77, 70, 0);
    await a.flush();
    await applied(5 + 7 + 5);
    points = reducer.tick(pastMatchWindow()).points;
    assert.equal(valueOf(points, 'tcp_bytes', forward), 220);
    assert.equal(valueOf(points, 'tcp_new_sockets', forward), 1, 'a pre-existing connection is not new');
    assert.equal(reducer.flows.tcp.size, 1);
    await a.close();
  });
});

describe('acknowledgements', () => {
  test('the reducer acknowledges every message it applied, within about 100 ms, and once more when it stops', async () => {
    const { reducer, collector, applied } = await setup();
    const a = collector('node-a');
    await a.connect();
    a.openTcp(clientEnd, 'curl'); // processStart, socketOpen, socketAddress
    a.stats(1, 1000, 5000);
    await a.flush();
    await applied(1 + 4);
    await waitFor('the ack of 5 messages', () => a.acked === 5);

    // Messages it applies just before it stops are acknowledged by its stop.
    a.stats(1, 10, 10);
    a.stats(1, 20, 20);
    await a.flush();
    await applied(1 + 6);
    await reducer.stop();
    reducers.splice(reducers.indexOf(reducer), 1);
    await a.closed();
    assert.equal(a.acked, 7, 'every applied message acknowledged before the connection closed');
  });
});
