// TCP on the real kernel, over loopback: the product's BPF programs (bpf/.output/ebpf_net.bpf.o)
// loaded by KernelProbes, real connections between this process and a child process, and exact
// assertions on what the kernel side reports: addresses, ports, roles, pids, byte counts (from a
// batch read while the connection is open and from the close events' final counters), the event
// sequence and the close cause. Root only.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { EventType, KernelCloseCause, KernelRole, SockFlag, type SockInfo, type SocketEvent } from '../src/kernel/index.js';
import { Child, killChildren } from './support/children.js';
import {
  AF_INET,
  AF_INET6,
  OWN_NETNS,
  ProbeSession,
  SKIP_NOT_ROOT,
  TCP,
  closeAllAndCheckReleased,
  ofSocket,
  typeNames,
} from './support/probes.js';

/** Bytes the client sends, and the server sends back: odd sizes, several segments each. */
const N = 100_003;
const M = 250_007;
const ECONNREFUSED = 111;

const FAMILIES = [
  { label: 'IPv4', fam: '4', host: '127.0.0.1', family: AF_INET },
  { label: 'IPv6', fam: '6', host: '::1', family: AF_INET6 },
] as const;

/** The listed fields of `info`, for one deepEqual with a readable diff. */
function pick(info: SockInfo, expected: Partial<SockInfo>): Partial<SockInfo> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(expected)) out[key] = info[key as keyof SockInfo];
  return out as Partial<SockInfo>;
}

function assertInfo(info: SockInfo | undefined, expected: Partial<SockInfo>, what: string): asserts info is SockInfo {
  assert.ok(info, `${what}: missing`);
  assert.deepEqual(pick(info, expected), expected, what);
}

/** Kills a process this test started indirectly, if it still runs. */
function killIfAlive(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A loopback port nobody listens on (bound, then released). */
async function closedPort(host: string): Promise<number> {
  const s = net.createServer();
  s.listen(0, host);
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

describe('kernel: TCP on loopback', { skip: SKIP_NOT_ROOT }, () => {
  after(async () => {
    await killChildren();
    await closeAllAndCheckReleased();
  });

  for (const { label, fam, host, family } of FAMILIES) {
    it(`${label}: a child sends exactly ${N} bytes, the server ${M} back; addresses, roles, pids, bytes, sequence, normal close`, async () => {
      const session = await ProbeSession.open();
      const server = net.createServer();
      try {
        // --- server in this process: read N bytes, answer M, close when the client does
        let sent!: () => void;
        let closed!: (received: number) => void;
        const serverSent = new Promise<void>((resolve) => (sent = resolve));
        const serverClosed = new Promise<number>((resolve) => (closed = resolve));
        server.on('connection', (sock) => {
          let received = 0;
          sock.on('data', (d: Buffer) => {
            received += d.length;
            if (received === N) sock.write(Buffer.alloc(M, 0x6d), () => sent());
          });
          sock.on('close', () => closed(received));
        });
        server.listen(0, host);
        await once(server, 'listening');
        const port = (server.address() as AddressInfo).port;

        // --- client in a child process
        const client = Child.python('tcp-client', [fam, host, port, N, M]);
        const hello = await client.next<{ pid: number; local: [string, number] }>();
        await serverSent;
        const [clientAddr, clientPort] = hello.local;
        assert.equal(hello.pid, client.pid);
        assert.equal(clientAddr, host);

        // --- identify both sockets from their events
        session.drain();
        const established = session.socketEvents((e) => e.type === EventType.TCP_ESTABLISHED && e.info.localPort === clientPort && e.info.remotePort === port);
        const accepted = session.socketEvents((e) => e.type === EventType.TCP_ACCEPT && e.info.localPort === port && e.info.remotePort === clientPort);
        assert.equal(established.length, 1, 'one ESTABLISHED event for the client socket');
        assert.equal(accepted.length, 1, 'one ACCEPT event for the server socket');
        const clientId = established[0]!.info.socketId;
        const serverId = accepted[0]!.info.socketId;
        assert.ok(clientId > 0 && serverId > 0 && clientId !== serverId, `socket ids ${clientId}, ${serverId}`);

        const common = { family, protocol: 6, netns: OWN_NETNS, localAddr: host, remoteAddr: host };
        const clientSide = { ...common, socketId: clientId, pid: client.pid, role: KernelRole.CLIENT, localPort: clientPort, remotePort: port };
        const serverSide = { ...common, socketId: serverId, pid: process.pid, role: KernelRole.SERVER, localPort: port, remotePort: clientPort };

        // --- batch read while the connection is open: exact counters so far
        const open = new Map<number, SockInfo>();
        const total = session.probes.readSockets((info) => {
          if (info.socketId === clientId || info.socketId === serverId) open.set(info.socketId, info.copy());
        });
        assert.ok(total >= 2, `readSockets read ${total} entries`);
        const live = { state: TCP.ESTABLISHED, flags: SockFlag.ESTABLISHED, closeNs: 0, cause: 0, skErr: 0, resetsSent: 0, resetsReceived: 0 };
        assertInfo(open.get(clientId), { ...clientSide, ...live, bytesSent: N, bytesReceived: M }, 'client entry in sock_stats while open');
        assertInfo(open.get(serverId), { ...serverSide, ...live, bytesSent: M, bytesReceived: N }, 'server entry in sock_stats while open');
        // TCP is not counted per call: the bytes above are the kernel's own tcp_sock counters
        assert.equal(open.get(clientId)!.sendCalls + open.get(clientId)!.recvCalls, 0, 'no per-call counting for TCP');
        assert.ok(open.get(serverId)!.segsOut > 0 && open.get(serverId)!.segsIn > 0, 'segment gauges');

        // --- close: the client first, then the server (on EOF)
        client.go();
        await client.finish();
        assert.equal(await serverClosed, N);
        const closes = await session.waitFor('both TCP_CLOSE events', () => {
          const c = ofSocket(session.events, clientId).find((e) => e.type === EventType.TCP_CLOSE);
          const s = ofSocket(session.events, serverId).find((e) => e.type === EventType.TCP_CLOSE);
          return c && s ? { c, s } : undefined;
        });

        // Final counters and cause, from the close events.
        const final = { state: TCP.CLOSE, flags: SockFlag.ESTABLISHED | SockFlag.CLOSED, cause: KernelCloseCause.NORMAL, skErr: 0, resetsSent: 0, resetsReceived: 0 };
        assertInfo(closes.c.info, { ...clientSide, ...final, bytesSent: N, bytesReceived: M, closeOldState: TCP.FIN_WAIT2 }, 'client TCP_CLOSE');
        assertInfo(closes.s.info, { ...serverSide, ...final, bytesSent: M, bytesReceived: N, closeOldState: TCP.LAST_ACK }, 'server TCP_CLOSE');
        for (const e of [closes.c, closes.s]) {
          assert.equal(e.cause, KernelCloseCause.NORMAL);
          assert.equal(e.oldState, e.info.closeOldState);
          assert.equal(e.newState, TCP.CLOSE);
          assert.ok(e.info.closeNs >= e.info.startNs && e.info.closeNs > 0, 'closeNs set');
        }

        // --- the sequence: connect, established, accept, then the two closes
        const ours = session.events.filter((e): e is SocketEvent => e.kind === 'socket' && (e.info.socketId === clientId || e.info.socketId === serverId));
        const seq = ours.map((e) => `${typeNames([e])[0]}:${e.info.socketId === clientId ? 'client' : 'server'}`);
        assert.deepEqual(seq.slice(0, 3), ['TCP_CONNECT:client', 'TCP_ESTABLISHED:client', 'TCP_ACCEPT:server'], seq.join(', '));
        assert.deepEqual([...seq.slice(3)].sort(), ['TCP_CLOSE:client', 'TCP_CLOSE:server'], seq.join(', '));
        for (let i = 1; i < ours.length; i++) assert.ok(ours[i]!.tsNs >= ours[i - 1]!.tsNs, 'ring order is time order');

        // CONNECT: in the client's context, before the kernel picks the local port.
        const [connect, est, acc] = ours;
        assertInfo(connect!.info, { socketId: clientId, pid: client.pid, role: KernelRole.CLIENT, family, remoteAddr: host, remotePort: port, state: TCP.SYN_SENT, flags: 0 }, 'TCP_CONNECT');
        assert.ok(connect!.info.localPort === 0 || connect!.info.localPort === clientPort, `TCP_CONNECT local port ${connect!.info.localPort}`);
        assert.equal(connect!.oldState, TCP.CLOSE);
        assertInfo(est!.info, { ...clientSide, state: TCP.ESTABLISHED, flags: SockFlag.ESTABLISHED, bytesSent: 0, bytesReceived: 0 }, 'TCP_ESTABLISHED');
        assert.equal(est!.oldState, TCP.SYN_SENT);
        // ACCEPT: in softirq; the pid is the listener's, tentative until the first send/recv.
        assertInfo(acc!.info, { ...serverSide, state: TCP.ESTABLISHED, flags: SockFlag.ESTABLISHED | SockFlag.PID_TENTATIVE, bytesSent: 0, bytesReceived: 0 }, 'TCP_ACCEPT');

        // The listener: one LISTEN event with this process as owner (socket id 0).
        const listen = session.socketEvents((e) => e.type === EventType.TCP_LISTEN && e.info.localPort === port && e.info.family === family);
        assert.equal(listen.length, 1, 'one TCP_LISTEN');
        assertInfo(listen[0]!.info, { socketId: 0, pid: process.pid, role: KernelRole.LISTENER, state: TCP.LISTEN, localAddr: host, netns: OWN_NETNS }, 'TCP_LISTEN');

        server.close();
        await once(server, 'close');
        const listenClose = await session.waitFor('TCP_LISTEN_CLOSE', () =>
          session.socketEvents((e) => e.type === EventType.TCP_LISTEN_CLOSE && e.info.localPort === port && e.info.family === family)[0],
        );
        assertInfo(listenClose.info, { socketId: 0, pid: process.pid, role: KernelRole.LISTENER, localAddr: host }, 'TCP_LISTEN_CLOSE');
      } finally {
        server.close();
        session.close();
      }
    });
  }

  for (const { label, fam, host, family } of FAMILIES) {
    it(`${label}: connect to a closed loopback port → close cause REFUSED`, async () => {
      const session = await ProbeSession.open();
      try {
        const port = await closedPort(host);
        const child = Child.python('connect', [fam, host, port]);
        const result = await child.next<{ pid: number; err: number }>();
        await child.finish();
        assert.equal(result.err, ECONNREFUSED);

        const close = await session.waitFor('TCP_CLOSE of the refused connect', () =>
          session.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.pid === child.pid && e.info.remotePort === port && e.info.family === family)[0],
        );
        assert.equal(close.cause, KernelCloseCause.REFUSED);
        assertInfo(
          close.info,
          {
            pid: child.pid,
            role: KernelRole.CLIENT,
            family,
            netns: OWN_NETNS,
            localAddr: host,
            remoteAddr: host,
            remotePort: port,
            state: TCP.CLOSE,
            closeOldState: TCP.SYN_SENT,
            cause: KernelCloseCause.REFUSED,
            flags: SockFlag.RST_RECEIVED | SockFlag.CLOSED,
            resetsReceived: 1,
            resetsSent: 0,
            skErr: ECONNREFUSED,
            bytesSent: 0,
            bytesReceived: 0,
          },
          'refused TCP_CLOSE',
        );
        assert.notEqual(close.info.localPort, 0, 'the close event carries the local port');
        assert.deepEqual(typeNames(ofSocket(session.events, close.info.socketId)), ['TCP_CONNECT', 'TCP_CLOSE']);
      } finally {
        session.close();
      }
    });
  }

  it('an accepted socket used by a forked child: ACCEPT with the listener pid, SOCK_PID with the child pid; the next one starts with the child', async () => {
    const session = await ProbeSession.open();
    let accepter = 0;
    try {
      const owner = Child.python('fork-accept', ['4', '127.0.0.1', 2]);
      const hello = await owner.next<{ pid: number; child: number; port: number }>();
      accepter = hello.child;
      assert.equal(hello.pid, owner.pid);

      // This process is the client: 5 bytes out, 6 back, close; twice.
      const exchange = async (): Promise<number> => {
        const sock = net.connect({ host: '127.0.0.1', port: hello.port });
        await once(sock, 'connect');
        const localPort = sock.localPort!;
        sock.write('hello');
        let got = 0;
        for await (const chunk of sock) {
          got += (chunk as Buffer).length;
          if (got >= 6) break; // breaking out of the iterator destroys (closes) the socket
        }
        assert.equal(got, 6);
        return localPort;
      };
      const clientPort = await exchange();
      const secondPort = await exchange();
      await owner.next(); // done: the child exited
      await owner.finish();

      const serverClose = await session.waitFor('TCP_CLOSE of the accepted socket', () =>
        session.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.localPort === hello.port && e.info.remotePort === clientPort)[0],
      );
      const events = ofSocket(session.events, serverClose.info.socketId);
      assert.deepEqual(typeNames(events), ['TCP_ACCEPT', 'SOCK_PID', 'TCP_CLOSE']);
      const [acc, pidChange] = events;
      assertInfo(acc!.info, { pid: hello.pid, role: KernelRole.SERVER, flags: SockFlag.ESTABLISHED | SockFlag.PID_TENTATIVE }, 'ACCEPT: pid of the listener');
      assertInfo(pidChange!.info, { pid: hello.child, role: KernelRole.SERVER, flags: SockFlag.ESTABLISHED }, 'SOCK_PID: pid of the accepting child');
      assertInfo(serverClose.info, { pid: hello.child, bytesReceived: 5, bytesSent: 6, cause: KernelCloseCause.NORMAL }, 'server TCP_CLOSE');

      const clientClose = await session.waitFor('TCP_CLOSE of this process\'s socket', () =>
        session.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.localPort === clientPort && e.info.remotePort === hello.port)[0],
      );
      assertInfo(clientClose.info, { pid: process.pid, role: KernelRole.CLIENT, bytesSent: 5, bytesReceived: 6 }, 'client TCP_CLOSE');

      // The child owns the listener now, as far as the guess goes: no SOCK_PID for the second.
      const secondClose = await session.waitFor('TCP_CLOSE of the second accepted socket', () =>
        session.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.localPort === hello.port && e.info.remotePort === secondPort)[0],
      );
      const second = ofSocket(session.events, secondClose.info.socketId);
      assert.deepEqual(typeNames(second), ['TCP_ACCEPT', 'TCP_CLOSE']);
      assertInfo(second[0]!.info, { pid: hello.child, flags: SockFlag.ESTABLISHED | SockFlag.PID_TENTATIVE }, 'second ACCEPT: pid of the child, still a guess');
      assertInfo(secondClose.info, { pid: hello.child, bytesReceived: 5, bytesSent: 6 }, 'second server TCP_CLOSE');
    } finally {
      session.close();
      // The python child's own child (it exits by itself once the connection is closed).
      if (accepter) killIfAlive(accepter);
    }
  });
});
