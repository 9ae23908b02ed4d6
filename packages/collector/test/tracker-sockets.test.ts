// The socket tracker without a kernel: counter reads handed to it by a fake CounterSource (the
// kernel's map rows built with the ABI's offsets), messages caught by a fake Outbox.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntityFlags, type MessageInput, type MessageName } from '@ebpf-net/protocol';
import { SOCK_INFO, SockFlag } from '../src/kernel/abi.js';
import { type SockInfo, sockInfoReader } from '../src/kernel/events.js';
import { type CounterSource, type Outbox, SocketTracker } from '../src/tracker/sockets.js';

/** Records every message (copied: the tracker reuses its message objects). */
class RecordingOutbox implements Outbox {
  readonly connected = true;
  readonly sent: Array<{ name: MessageName; message: Record<string, unknown> }> = [];
  send<N extends MessageName>(name: N, message: MessageInput<N>): void {
    this.sent.push({ name, message: { ...(message as Record<string, unknown>) } });
  }
  sender<N extends MessageName>(name: N): (message: MessageInput<N>) => void {
    return (message) => this.send(name, message);
  }
  of(name: MessageName): Array<Record<string, unknown>> {
    return this.sent.filter((m) => m.name === name).map((m) => m.message);
  }
}

/** One TCP row of sock_stats over 127.0.0.1, as the kernel writes it. */
function tcpRow(fields: { socketId: number; flags: number; bytesSent: number; bytesReceived: number }): Buffer {
  const b = Buffer.alloc(SOCK_INFO.size);
  b.writeBigUInt64LE(BigInt(fields.socketId), SOCK_INFO.socketId);
  b.writeBigUInt64LE(BigInt(fields.bytesSent), SOCK_INFO.bytesSent);
  b.writeBigUInt64LE(BigInt(fields.bytesReceived), SOCK_INFO.bytesReceived);
  b.writeUInt32LE(fields.flags, SOCK_INFO.flags);
  b.writeUInt16LE(2, SOCK_INFO.family);
  b.writeUInt16LE(6, SOCK_INFO.protocol);
  b.writeUInt16LE(40000, SOCK_INFO.sport);
  b.writeUInt16LE(80, SOCK_INFO.dport);
  for (const at of [SOCK_INFO.saddr, SOCK_INFO.daddr]) Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]).copy(b, at);
  return b;
}

/** A CounterSource whose sock_stats holds the given rows; no events, no UDP. */
function source(rows: Buffer[]): CounterSource {
  const read = sockInfoReader();
  return {
    drain: () => 0,
    readSockets: (onSocket: (info: SockInfo) => void) => {
      for (const r of rows) onSocket(read(r, 0));
      return rows.length;
    },
    readUdpRemotes: () => 0,
  };
}

describe('socket tracker', () => {
  it('an adopted connection first seen in a counter read (its TCP_EXISTING lost) counts from that read', () => {
    const out = new RecordingOutbox();
    const tracker = new SocketTracker(out, { maxSockets: 16 });
    const flags = SockFlag.ESTABLISHED | SockFlag.PREEXISTING;
    // Lifetime counters at the first read: what the connection moved before the collector.
    tracker.poll(source([tcpRow({ socketId: 7, flags, bytesSent: 5000, bytesReceived: 9000 })]));
    assert.equal(out.of('socketOpen').length, 1);
    assert.ok(((out.of('socketOpen')[0]!.flags as number) & EntityFlags.PREEXISTING) !== 0, 'announced as pre-existing');
    assert.deepEqual(out.of('socketStats'), [], 'the counters before the start are not reported');
    tracker.poll(source([tcpRow({ socketId: 7, flags, bytesSent: 5300, bytesReceived: 9040 })]));
    assert.deepEqual(out.of('socketStats').map((m) => [m.bytesSent, m.bytesReceived]), [[300, 40]]);
  });

  it('a new connection first seen in a counter read (TCP has no open event) reports its counters whole', () => {
    const out = new RecordingOutbox();
    const tracker = new SocketTracker(out, { maxSockets: 16 });
    tracker.poll(source([tcpRow({ socketId: 8, flags: SockFlag.ESTABLISHED, bytesSent: 1200, bytesReceived: 34 })]));
    assert.deepEqual(out.of('socketStats').map((m) => [m.bytesSent, m.bytesReceived]), [[1200, 34]]);
  });

  it('a counter read lower than the last one (bytes_received between the FIN and its flag) sends nothing and counts nothing twice', () => {
    const out = new RecordingOutbox();
    const tracker = new SocketTracker(out, { maxSockets: 16 });
    const row = (received: number) => tcpRow({ socketId: 9, flags: SockFlag.ESTABLISHED, bytesSent: 10, bytesReceived: received });
    tracker.poll(source([row(101)]));
    tracker.poll(source([row(100)]));
    tracker.poll(source([row(150)]));
    assert.deepEqual(out.of('socketStats').map((m) => m.bytesReceived), [101, 49]);
  });
  it('a socket from the scan keeps its id when the kernel names it; a new socket on the same local port is a new one', () => {
    const out = new RecordingOutbox();
    const tracker = new SocketTracker(out, { maxSockets: 16 });
    // The scan found a connection 127.0.0.1:40000 -> 127.0.0.1:80 (in namespace 0, as the rows say).
    tracker.addExisting([{ protocol: 6, family: 2, localAddr: '127.0.0.1', localPort: 40000, remoteAddr: '127.0.0.1', remotePort: 80, netns: 0, pid: 9, role: 1 }]);
    const scanId = out.of('socketOpen')[0]!.socketId;
    const established = SockFlag.ESTABLISHED;
    // The kernel names it (socket 7); another socket on local port 40000 but to port 81 is new.
    const other = tcpRow({ socketId: 8, flags: established, bytesSent: 1, bytesReceived: 1 });
    other.writeUInt16LE(81, SOCK_INFO.dport);
    tracker.poll(source([tcpRow({ socketId: 7, flags: established, bytesSent: 10, bytesReceived: 20 }), other]));
    const opens = out.of('socketOpen').map((m) => m.socketId);
    assert.equal(opens.length, 2, 'the scanned socket and the new one');
    assert.equal(opens[0], scanId);
    assert.notEqual(opens[1], scanId);
    assert.deepEqual(out.of('socketStats').map((m) => m.socketId).sort(), [...opens].sort(), 'each counted under its own id');
  });
});
