// UDP on the real kernel, over loopback: datagrams of exact sizes both ways between a server
// socket in this process and a client socket in a child, with sendto/recvfrom, so the kernel
// side knows every datagram's remote. Asserts the per-remote counters (readUdpRemotes), the
// sockets' counters (readSockets), the UDP_OPEN events and the UDP_CLOSE events with the final
// counters. Then a connected client and a recv() that does not ask for the source (the remote
// comes from the socket, or is unknown), and sockets closed one after another, whose memory the
// next ones reuse. A UDP close is noticed by refresh_udp, which readSockets runs. Root only.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { EventType, type SockInfo, type UdpRemoteCounters } from '../src/kernel/index.js';
import { Child, killChildren } from './support/children.js';
import { AF_INET, AF_INET6, OWN_NETNS, ProbeSession, SKIP_NOT_ROOT, closeAllAndCheckReleased, ofSocket, typeNames } from './support/probes.js';

/** Client → server datagram sizes; the server answers each with size / 2 + 7. */
const SIZES = [100, 200, 300, 1400];
const reply = (n: number): number => n / 2 + 7;
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const UDP_CLOSE_STATE = 7; // sk_state of an unconnected UDP socket (TCP_CLOSE)

const FAMILIES = [
  { label: 'IPv4', fam: '4', host: '127.0.0.1', any: '0.0.0.0', type: 'udp4', family: AF_INET },
  { label: 'IPv6', fam: '6', host: '::1', any: '::', type: 'udp6', family: AF_INET6 },
] as const;

function pick<T extends object>(value: T, expected: Partial<T>): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(expected)) out[key] = value[key as keyof T];
  return out as Partial<T>;
}

/** Runs refresh_udp (through readSockets): the UDP sockets gone since are reported closed. */
function noticeUdpCloses(session: ProbeSession): void {
  session.probes.readSockets(() => {});
}

function remotesOf(session: ProbeSession, socketId: number): UdpRemoteCounters[] {
  const out: UdpRemoteCounters[] = [];
  session.probes.readUdpRemotes((r) => {
    if (r.socketId === socketId) out.push(r);
  });
  return out.sort((a, b) => a.remotePort - b.remotePort);
}

describe('kernel: UDP on loopback', { skip: SKIP_NOT_ROOT }, () => {
  after(async () => {
    await killChildren();
    await closeAllAndCheckReleased();
  });

  for (const { label, fam, host, any, type, family } of FAMILIES) {
    it(`${label}: sendto/recvfrom of exact sizes both ways → per-remote counters, UDP_OPEN, UDP_CLOSE`, async () => {
      const session = await ProbeSession.open();
      const server = dgram.createSocket(type);
      let serverOpen = true;
      const closeServer = (): void => {
        if (serverOpen) server.close();
        serverOpen = false;
      };
      try {
        server.on('message', (msg, rinfo) => server.send(Buffer.alloc(reply(msg.length), 0x72), rinfo.port, rinfo.address));
        server.bind(0, host);
        await once(server, 'listening');
        const port = server.address().port;

        const client = Child.python('udp-client', [fam, host, port, SIZES.join(',')]);
        const hello = await client.next<{ pid: number; local: [string, number]; replies: number[] }>();
        assert.deepEqual(hello.replies, SIZES.map(reply));
        const [clientAddr, clientPort] = hello.local;
        assert.equal(clientAddr, any, 'the client socket is not bound to an address');

        // UDP_OPEN of both sockets, at their first datagram.
        session.drain();
        const clientOpen = session.socketEvents((e) => e.type === EventType.UDP_OPEN && e.info.pid === client.pid && e.info.localPort === clientPort);
        const serverOpens = session.socketEvents((e) => e.type === EventType.UDP_OPEN && e.info.pid === process.pid && e.info.localPort === port);
        assert.equal(clientOpen.length, 1, 'one UDP_OPEN for the client socket');
        assert.equal(serverOpens.length, 1, 'one UDP_OPEN for the server socket');
        const clientId = clientOpen[0]!.info.socketId;
        const serverId = serverOpens[0]!.info.socketId;
        const common = { family, protocol: 17, netns: OWN_NETNS, remotePort: 0, remoteAddr: any, state: UDP_CLOSE_STATE, role: 0 };
        const clientSide = { ...common, socketId: clientId, pid: client.pid, localAddr: any, localPort: clientPort };
        const serverSide = { ...common, socketId: serverId, pid: process.pid, localAddr: host, localPort: port };
        // Created by the first datagram (sent by the client, received by the server): counters
        // are added after the event.
        assert.deepEqual(pick(clientOpen[0]!.info, { ...clientSide, bytesSent: 0, bytesReceived: 0 }), { ...clientSide, bytesSent: 0, bytesReceived: 0 });
        assert.deepEqual(pick(serverOpens[0]!.info, { ...serverSide, bytesSent: 0, bytesReceived: 0 }), { ...serverSide, bytesSent: 0, bytesReceived: 0 });

        // Per-remote counters: one remote each, exact bytes and datagrams both ways.
        const out = sum(SIZES);
        const back = sum(SIZES.map(reply));
        const n = SIZES.length;
        assert.deepEqual(remotesOf(session, clientId), [
          { socketId: clientId, remoteAddr: host, remotePort: port, bytesSent: out, bytesReceived: back, packetsSent: n, packetsReceived: n },
        ]);
        assert.deepEqual(remotesOf(session, serverId), [
          { socketId: serverId, remoteAddr: host, remotePort: clientPort, bytesSent: back, bytesReceived: out, packetsSent: n, packetsReceived: n },
        ]);

        // The sockets' own counters (sock_stats), while open.
        const open = new Map<number, SockInfo>();
        session.probes.readSockets((info) => {
          if (info.socketId === clientId || info.socketId === serverId) open.set(info.socketId, info.copy());
        });
        const counters = (sent: number, received: number) => ({ bytesSent: sent, bytesReceived: received, sendCalls: n, recvCalls: n, closeNs: 0 });
        assert.deepEqual(pick(open.get(clientId)!, { ...clientSide, ...counters(out, back) }), { ...clientSide, ...counters(out, back) });
        assert.deepEqual(pick(open.get(serverId)!, { ...serverSide, ...counters(back, out) }), { ...serverSide, ...counters(back, out) });

        // Close both: UDP_CLOSE with the final counters; the sock_stats entries are gone.
        client.go();
        await client.finish();
        closeServer();
        const closes = await session.waitFor('both UDP_CLOSE events', () => {
          noticeUdpCloses(session);
          const c = ofSocket(session.events, clientId).find((e) => e.type === EventType.UDP_CLOSE);
          const s = ofSocket(session.events, serverId).find((e) => e.type === EventType.UDP_CLOSE);
          return c && s ? { c, s } : undefined;
        });
        assert.deepEqual(pick(closes.c.info, { ...clientSide, ...counters(out, back), closeNs: closes.c.info.closeNs }), { ...clientSide, ...counters(out, back), closeNs: closes.c.info.closeNs });
        assert.deepEqual(pick(closes.s.info, { ...serverSide, ...counters(back, out), closeNs: closes.s.info.closeNs }), { ...serverSide, ...counters(back, out), closeNs: closes.s.info.closeNs });
        assert.ok(closes.c.info.closeNs > 0 && closes.s.info.closeNs > 0);
        assert.deepEqual(typeNames(ofSocket(session.events, clientId)), ['UDP_OPEN', 'UDP_CLOSE']);
        assert.deepEqual(typeNames(ofSocket(session.events, serverId)), ['UDP_OPEN', 'UDP_CLOSE']);
        let left = 0;
        session.probes.readSockets((info) => void (left += info.socketId === clientId || info.socketId === serverId ? 1 : 0));
        assert.equal(left, 0, 'closed UDP sockets leave sock_stats');

        // Per-remote entries stay for user space to read (and delete) after the close.
        let removed = 0;
        session.probes.readUdpRemotes((r) => void (removed += r.socketId === clientId || r.socketId === serverId ? 1 : 0), true);
        assert.equal(removed, 2);
        assert.deepEqual(remotesOf(session, clientId), []);
        assert.deepEqual(remotesOf(session, serverId), []);
      } finally {
        closeServer();
        session.close();
      }
    });
  }

  for (const hooks of ['typed', 'raw'] as const) it(`IPv4, ${hooks}: sockets closed one after another, their memory reused: one UDP_OPEN and one UDP_CLOSE each, with its own bytes`, async (t) => {
    const COUNT = 40;
    const session = await ProbeSession.open({ hooks });
    const server = dgram.createSocket('udp4');
    try {
      server.bind(0, '127.0.0.1');
      await once(server, 'listening');
      const child = Child.python('udp-churn', ['4', '127.0.0.1', server.address().port, COUNT, 20]);
      const done = await child.next<{ pid: number; ports: number[] }>();
      await child.finish();
      // Closes found so far: a later socket's first datagram found an entry of an earlier one at
      // its address (no refresh_udp ran in between).
      session.drain();
      const closedByReuse = session.socketEvents((e) => e.type === EventType.UDP_CLOSE && e.info.pid === child.pid).length;
      t.diagnostic(`${closedByReuse} of ${COUNT} closes found by a later socket at the same address, the rest by refresh_udp`);
      // Sequential sockets of one thread get the same memory back (38 of 40 here): both ways run.
      assert.ok(closedByReuse > 0 && closedByReuse < COUNT, `${closedByReuse} of ${COUNT} closes found by reuse`);
      const events = await session.waitFor(`${COUNT} UDP_CLOSE events`, () => {
        noticeUdpCloses(session);
        const mine = session.socketEvents((e) => e.info.pid === child.pid);
        return mine.filter((e) => e.type === EventType.UDP_CLOSE).length >= COUNT ? mine : undefined;
      });
      const ids = [...new Set(events.map((e) => e.info.socketId))];
      assert.equal(ids.length, COUNT, 'one socket id per socket');
      // The kernel may give a later socket the port of an earlier one: each takes the first open
      // at its port that no earlier socket took (the sockets ran one after another).
      const taken = new Set<number>();
      const closes = done.ports.map((port, i) => {
        const id = events.find((e) => e.type === EventType.UDP_OPEN && e.info.localPort === port && !taken.has(e.info.socketId))?.info.socketId;
        if (id) taken.add(id);
        assert.ok(id, `UDP_OPEN of socket ${i} (port ${port})`);
        assert.deepEqual(typeNames(ofSocket(events, id)), ['UDP_OPEN', 'UDP_CLOSE'], `socket ${i}`);
        return pick(ofSocket(events, id).find((e) => e.type === EventType.UDP_CLOSE)!.info, { localPort: port, bytesSent: 0, sendCalls: 0 });
      });
      assert.deepEqual(closes, done.ports.map((port, i) => ({ localPort: port, bytesSent: 100 + i, sendCalls: 1 })));
    } finally {
      server.close();
      session.close();
    }
  });

  it('IPv4: connected client (send/recv) and a recv() without the source: remote from the socket, or unknown', async () => {
    const session = await ProbeSession.open();
    try {
      const child = Child.python('udp-connected', ['4', '127.0.0.1']);
      const hello = await child.next<{ pid: number; server: [string, number]; client: [string, number]; got: number[] }>();
      assert.deepEqual(hello.got, [111, 222, 33]);
      const [, serverPort] = hello.server;
      const [clientAddr, clientPort] = hello.client;
      assert.equal(clientAddr, '127.0.0.1', 'connect() bound the client to the loopback address');
      session.drain();
      const opens = session.socketEvents((e) => e.type === EventType.UDP_OPEN && e.info.pid === child.pid);
      const clientId = opens.find((e) => e.info.localPort === clientPort)?.info.socketId;
      const serverId = opens.find((e) => e.info.localPort === serverPort)?.info.socketId;
      assert.ok(clientId && serverId, `UDP_OPEN of both sockets: ${JSON.stringify(opens.map((e) => e.info.localPort))}`);
      // The connected client's OPEN carries its peer.
      const clientOpen = opens.find((e) => e.info.socketId === clientId)!;
      assert.deepEqual(pick(clientOpen.info, { remoteAddr: '127.0.0.1', remotePort: serverPort, localAddr: '127.0.0.1' }), { remoteAddr: '127.0.0.1', remotePort: serverPort, localAddr: '127.0.0.1' });

      assert.deepEqual(remotesOf(session, clientId), [
        { socketId: clientId, remoteAddr: '127.0.0.1', remotePort: serverPort, bytesSent: 333, bytesReceived: 33, packetsSent: 2, packetsReceived: 1 },
      ]);
      assert.deepEqual(remotesOf(session, serverId), [
        // recv() without a source address: the remote is unknown ('' and port 0)
        { socketId: serverId, remoteAddr: '', remotePort: 0, bytesSent: 0, bytesReceived: 111, packetsSent: 0, packetsReceived: 1 },
        { socketId: serverId, remoteAddr: '127.0.0.1', remotePort: clientPort, bytesSent: 33, bytesReceived: 222, packetsSent: 1, packetsReceived: 1 },
      ]);
      child.go();
      await child.finish();
      const closes = await session.waitFor('both UDP_CLOSE events', () => {
        noticeUdpCloses(session);
        const c = ofSocket(session.events, clientId).find((e) => e.type === EventType.UDP_CLOSE);
        const s = ofSocket(session.events, serverId).find((e) => e.type === EventType.UDP_CLOSE);
        return c && s ? { c, s } : undefined;
      });
      assert.deepEqual(pick(closes.c.info, { bytesSent: 333, bytesReceived: 33, sendCalls: 2, recvCalls: 1, pid: child.pid }), { bytesSent: 333, bytesReceived: 33, sendCalls: 2, recvCalls: 1, pid: child.pid });
      assert.deepEqual(pick(closes.s.info, { bytesSent: 33, bytesReceived: 333, sendCalls: 1, recvCalls: 2, pid: child.pid }), { bytesSent: 33, bytesReceived: 333, sendCalls: 1, recvCalls: 2, pid: child.pid });
    } finally {
      session.close();
    }
  });
});
