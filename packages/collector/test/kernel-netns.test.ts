// TCP in network namespaces the test makes itself (ip netns, lo up, iptables-legacy rules inside
// the namespace only): a SYN that is never answered ends in close cause SYN_TIMEOUT, and probes
// opened for one namespace (KernelProbes `netns`) see only that namespace. Every namespace is
// deleted in finally, with its rules and whatever still runs inside. Root only.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { EventType, KernelCloseCause, KernelRole, SockFlag } from '../src/kernel/index.js';
import { Child, killChildren } from './support/children.js';
import { Netns, leftoverNamespaces } from './support/netns.js';
import { AF_INET, ProbeSession, SKIP_NOT_ROOT, TCP, closeAllAndCheckReleased, ofSocket, sleep, typeNames } from './support/probes.js';

const ETIMEDOUT = 110;
const ECONNREFUSED = 111;
const EINPROGRESS = 115;
/** Nothing listens on the discard port in a fresh namespace. */
const PORT = 9;

describe('kernel: TCP in a test network namespace', { skip: SKIP_NOT_ROOT }, () => {
  after(async () => {
    await killChildren();
    await closeAllAndCheckReleased();
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
  });

  it('SYN dropped by iptables inside the namespace, TCP_SYNCNT=1 → close cause SYN_TIMEOUT', async () => {
    const ns = Netns.create('syn');
    let session: ProbeSession | undefined;
    try {
      // Drop every SYN inside the namespace: the connect gets neither SYN-ACK nor RST.
      ns.exec('iptables-legacy', ['-A', 'INPUT', '-p', 'tcp', '--syn', '-j', 'DROP']);
      session = await ProbeSession.open();
      const child = Child.python('syn-timeout', ['127.0.0.1', PORT], { netns: ns });
      const r = await child.next<{ pid: number; local: [string, number]; started: number; err: number; seconds: number }>(20_000);
      await child.finish();
      assert.equal(r.pid, child.pid, 'ip netns exec execs python: same pid');
      assert.equal(r.started, EINPROGRESS);
      assert.equal(r.err, ETIMEDOUT);
      const [localAddr, localPort] = r.local;
      assert.equal(localAddr, '127.0.0.1');
      assert.ok(localPort > 0);

      const s = session;
      const close = await s.waitFor('TCP_CLOSE of the timed-out connect', () =>
        s.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.netns === ns.inode && e.info.pid === child.pid)[0],
      );
      assert.equal(close.cause, KernelCloseCause.SYN_TIMEOUT);
      const i = close.info;
      assert.deepEqual(
        {
          pid: i.pid,
          netns: i.netns,
          family: i.family,
          role: i.role,
          localAddr: i.localAddr,
          localPort: i.localPort,
          remoteAddr: i.remoteAddr,
          remotePort: i.remotePort,
          state: i.state,
          closeOldState: i.closeOldState,
          cause: i.cause,
          skErr: i.skErr,
          flags: i.flags,
          bytesSent: i.bytesSent,
          bytesReceived: i.bytesReceived,
          resetsSent: i.resetsSent,
          resetsReceived: i.resetsReceived,
        },
        {
          pid: child.pid,
          netns: ns.inode,
          family: AF_INET,
          role: KernelRole.CLIENT,
          localAddr: '127.0.0.1',
          localPort,
          remoteAddr: '127.0.0.1',
          remotePort: PORT,
          state: TCP.CLOSE,
          closeOldState: TCP.SYN_SENT,
          cause: KernelCloseCause.SYN_TIMEOUT,
          skErr: ETIMEDOUT,
          flags: SockFlag.CLOSED, // never ESTABLISHED, no reset either way
          bytesSent: 0,
          bytesReceived: 0,
          resetsSent: 0,
          resetsReceived: 0,
        },
      );
      // The SYN went out and was retransmitted before the kernel gave up: segs_out counts the
      // first SYN plus its retransmissions (tcp_sock.total_retrans).
      assert.ok(i.retransmits >= 1, `retransmits ${i.retransmits}`);
      assert.equal(i.segsOut, i.retransmits + 1);
      assert.ok(i.closeNs - i.startNs >= 2.5e9, `SYN_SENT for ${(i.closeNs - i.startNs) / 1e9} s (1 s + 2 s of RTO)`);
      assert.deepEqual(typeNames(ofSocket(s.events, i.socketId)), ['TCP_CLOSE']);
    } finally {
      session?.close();
      ns.delete();
    }
  });

  it('probes opened for one namespace see its sockets and processes, nothing of the host namespace', async () => {
    const ns = Netns.create('filter');
    let session: ProbeSession | undefined;
    try {
      session = await ProbeSession.open({ netns: [ns.inode] });
      // A refused connect in the host namespace first (it must not show), then one inside.
      const outside = Child.python('connect', ['4', '127.0.0.1', PORT]);
      const o = await outside.next<{ err: number }>();
      await outside.finish();
      const inside = Child.python('connect', ['4', '127.0.0.1', PORT], { netns: ns });
      const n = await inside.next<{ err: number }>();
      await inside.finish();
      // (Outside, a service may listen on port 9; inside, nothing does.)
      assert.ok(o.err === ECONNREFUSED || o.err === 0, `outside connect: errno ${o.err}`);
      assert.equal(n.err, ECONNREFUSED);

      const s = session;
      const close = await s.waitFor('TCP_CLOSE inside the namespace', () =>
        s.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.pid === inside.pid)[0],
      );
      assert.equal(close.cause, KernelCloseCause.REFUSED);
      assert.equal(close.info.netns, ns.inode);
      await sleep(100);
      s.drain();

      const foreignSockets = s.socketEvents((e) => e.info.netns !== ns.inode);
      assert.deepEqual(foreignSockets.map((e) => `${typeNames([e])[0]} pid ${e.info.pid} netns ${e.info.netns}`), [], 'socket events of other namespaces');
      assert.equal(s.socketEvents((e) => e.info.pid === outside.pid).length, 0, 'nothing of the connect outside');
      // Process events: tasks in the namespace only (or whose namespace is unknown: 0).
      const foreignProcesses = s.processEvents((e) => e.netns !== ns.inode && e.netns !== 0);
      assert.deepEqual(foreignProcesses.map((e) => `${typeNames([e])[0]} ${e.comm} pid ${e.pid} netns ${e.netns}`), [], 'process events of other namespaces');
      assert.equal(s.processEvents((e) => e.pid === outside.pid).length, 0);
      // python inside: exec (after ip's setns) and exit, both in the namespace.
      assert.deepEqual(
        s.processEvents((e) => e.pid === inside.pid).map((e) => [typeNames([e])[0], e.netns]),
        [
          ['PROC_EXEC', ns.inode],
          ['PROC_EXIT', ns.inode],
        ],
      );
    } finally {
      session?.close();
      ns.delete();
    }
  });
});
