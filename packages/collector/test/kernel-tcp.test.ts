// TCP on the real kernel, over loopback: the product's BPF programs (bpf/.output/ebpf_net.bpf.o)
// loaded by KernelProbes, real connections between this process and a child process, and exact
// assertions on what the kernel side reports: addresses, ports, roles, pids, byte counts (from a
// batch read while the connection is open and from the close events' final counters), the event
// sequence (a connection has no event before its close: it is found in the map) and the close
// cause. Root only.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net, { type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { DEFAULT_OBJECT_PATH, EventType, KernelCloseCause, KernelRole, SockFlag, type SockInfo, type SocketEvent, typedObjectPath } from '../src/kernel/index.js';
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

  for (const { label, fam, host, family } of FAMILIES) for (const hooks of ['typed', 'raw'] as const) {
    it(`${label}, ${hooks} tracepoints: a child sends exactly ${N} bytes, the server ${M} back; addresses, roles, pids, bytes, sequence, normal close`, async () => {
      const session = await ProbeSession.open({ hooks });
      assert.equal(session.probes.hooks, hooks);
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

        // --- batch read while the connection is open: both entries, exact counters so far
        let clientEntry: SockInfo | undefined;
        let serverEntry: SockInfo | undefined;
        const total = session.probes.readSockets((info) => {
          if (info.family !== family || info.protocol !== 6) return;
          if (info.localPort === clientPort && info.remotePort === port) clientEntry = info.copy();
          if (info.localPort === port && info.remotePort === clientPort) serverEntry = info.copy();
        });
        assert.ok(total >= 2, `readSockets read ${total} entries`);
        assert.ok(clientEntry && serverEntry, 'both sockets are in sock_stats');
        const clientId = clientEntry.socketId;
        const serverId = serverEntry.socketId;
        assert.ok(clientId > 0 && serverId > 0 && clientId !== serverId, `socket ids ${clientId}, ${serverId}`);
        const open = new Map([[clientId, clientEntry], [serverId, serverEntry]]);

        const common = { family, protocol: 6, netns: OWN_NETNS, localAddr: host, remoteAddr: host };
        const clientSide = { ...common, socketId: clientId, pid: client.pid, role: KernelRole.CLIENT, localPort: clientPort, remotePort: port };
        const serverSide = { ...common, socketId: serverId, pid: process.pid, role: KernelRole.SERVER, localPort: port, remotePort: clientPort };
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

        // --- the sequence: nothing before the two closes (a new connection is an entry, not an event)
        const ours = session.events.filter((e): e is SocketEvent => e.kind === 'socket' && (e.info.socketId === clientId || e.info.socketId === serverId));
        const seq = ours.map((e) => `${typeNames([e])[0]}:${e.info.socketId === clientId ? 'client' : 'server'}`);
        assert.deepEqual([...seq].sort(), ['TCP_CLOSE:client', 'TCP_CLOSE:server'], seq.join(', '));

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
        assert.deepEqual(typeNames(ofSocket(session.events, close.info.socketId)), ['TCP_CLOSE']);
      } finally {
        session.close();
      }
    });
  }

  // Listening before the programs are loaded: no listen() seen, so the first accepted socket has
  // no owner to guess from; its first I/O names one, for the listener too.
  for (const listenerFirst of [false, true]) {
  it(`an accepted socket used by a forked child: SOCK_PID with the child pid; the next one starts with the child${listenerFirst ? ' (listener older than the programs)' : ''}`, async () => {
    let session: ProbeSession | undefined;
    let accepter = 0;
    try {
      if (!listenerFirst) session = await ProbeSession.open();
      const owner = Child.python('fork-accept', ['4', '127.0.0.1', 2]);
      const hello = await owner.next<{ pid: number; child: number; port: number }>();
      accepter = hello.child;
      assert.equal(hello.pid, owner.pid);
      session ??= await ProbeSession.open();

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
        session!.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.localPort === hello.port && e.info.remotePort === clientPort)[0],
      );
      const events = ofSocket(session.events, serverClose.info.socketId);
      // The entry's pid was the listener's (the parent), a guess the child's first recv corrects.
      assert.deepEqual(typeNames(events), ['SOCK_PID', 'TCP_CLOSE']);
      assertInfo(events[0]!.info, { pid: hello.child, role: KernelRole.SERVER, flags: SockFlag.ESTABLISHED }, 'SOCK_PID: pid of the accepting child');
      assertInfo(serverClose.info, { pid: hello.child, bytesReceived: 5, bytesSent: 6, cause: KernelCloseCause.NORMAL }, 'server TCP_CLOSE');

      const clientClose = await session.waitFor('TCP_CLOSE of this process\'s socket', () =>
        session!.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.localPort === clientPort && e.info.remotePort === hello.port)[0],
      );
      assertInfo(clientClose.info, { pid: process.pid, role: KernelRole.CLIENT, bytesSent: 5, bytesReceived: 6 }, 'client TCP_CLOSE');

      // The child owns the listener now, as far as the guess goes: no SOCK_PID for the second.
      const secondClose = await session.waitFor('TCP_CLOSE of the second accepted socket', () =>
        session!.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.localPort === hello.port && e.info.remotePort === secondPort)[0],
      );
      const second = ofSocket(session.events, secondClose.info.socketId);
      assert.deepEqual(typeNames(second), ['TCP_CLOSE'], 'the guess was the child already');
      assertInfo(secondClose.info, { pid: hello.child, bytesReceived: 5, bytesSent: 6 }, 'second server TCP_CLOSE');
    } finally {
      session?.close();
      // The python child's own child (it exits by itself once the connection is closed).
      if (accepter) killIfAlive(accepter);
    }
  });
  }
  it('auto falls back to the raw build when the typed one is refused (here: a typed file that is not an object); typed alone then fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-net-hooks-'));
    try {
      const raw = join(dir, 'ebpf_net.bpf.o');
      copyFileSync(DEFAULT_OBJECT_PATH, raw);
      writeFileSync(typedObjectPath(raw), 'not an ELF object');
      const session = await ProbeSession.open({ objectPath: raw });
      assert.equal(session.probes.hooks, 'raw');
      session.close();
      await assert.rejects(ProbeSession.open({ objectPath: raw, hooks: 'typed' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
