// The kernel's TCP table when it is full, on the real kernel: an 8-slot table (socketEntries 8:
// one group of 8 slots, so every socket competes for the same slots) and 12 connections held
// open at once in a network namespace of the test's own, the only one the probes trace. The
// first 8 ends are tracked; the others are counted as socket-map losses, and their closes are
// still reported with their 4-tuple (socket_id 0). Once they have closed the slots are free
// again. Root only.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { EventType, KernelLossCause, type SockInfo } from '../src/kernel/index.js';
import { Child, killChildren } from './support/children.js';
import { Netns, leftoverNamespaces } from './support/netns.js';
import { ProbeSession, SKIP_NOT_ROOT, closeAllAndCheckReleased } from './support/probes.js';

const SLOTS = 8;
const CONNECTIONS = 12;

/** The TCP entries of a read, as [local port, remote port]. */
function tcpEntries(session: ProbeSession): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  session.probes.readSockets((info: SockInfo) => {
    if (info.protocol === 6) out.push([info.localPort, info.remotePort]);
  });
  return out;
}

describe('kernel: a full TCP table', { skip: SKIP_NOT_ROOT }, () => {
  after(async () => {
    await killChildren();
    await closeAllAndCheckReleased();
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
  });

  it(`${SLOTS} slots, ${CONNECTIONS} connections open at once: ${SLOTS} ends tracked, the rest counted as lost and still closed by 4-tuple; the slots are free again after`, async () => {
    const ns = Netns.create('table');
    let session: ProbeSession | undefined;
    try {
      session = await ProbeSession.open({ socketEntries: SLOTS, netns: [ns.inode] });
      const s = session;
      const held = Child.python('hold', ['127.0.0.1', CONNECTIONS], { netns: ns });
      const h = await held.next<{ pid: number; port: number; clients: number[] }>();

      // --- open: the table is full, every end beyond it was counted
      const live = tcpEntries(s);
      assert.equal(live.length, SLOTS, `tracked ends: ${JSON.stringify(live)}`);
      for (const [local, remote] of live) {
        assert.ok(local === h.port || remote === h.port, `an end of this run's connections: ${local} → ${remote}`);
      }
      const lost = s.probes.readDrops()[KernelLossCause.SOCKET_MAP]!;
      // A client end that found no slot at connect() tries again when it is established (its
      // connect may simply not have been seen), so it is counted once or twice.
      const untracked = 2 * CONNECTIONS - SLOTS;
      assert.ok(lost >= untracked && lost <= 2 * untracked, `socket-map losses ${lost} for ${untracked} untracked ends`);

      // --- close all: every end reports its close, the untracked ones with socket_id 0
      held.go();
      await held.next();
      await held.finish();
      const closes = await s.waitFor('every close', () => {
        const c = s.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.netns === ns.inode);
        return c.length >= 2 * CONNECTIONS ? c : undefined;
      });
      assert.equal(closes.length, 2 * CONNECTIONS);
      assert.equal(closes.filter((e) => e.info.socketId === 0).length, untracked, 'closes of untracked ends');
      assert.equal(new Set(closes.filter((e) => e.info.socketId !== 0).map((e) => e.info.socketId)).size, SLOTS, 'closes of tracked ends, one each');
      for (const e of closes) assert.ok(e.info.localPort === h.port || e.info.remotePort === h.port, `close of ${e.info.localPort} → ${e.info.remotePort}`);
      assert.deepEqual(tcpEntries(s), [], 'the table is empty once everything closed');

      // --- the slots are taken again: one more connection is tracked whole, with no new loss
      const again = Child.python('burst', ['127.0.0.1', 1], { netns: ns });
      await again.next();
      await again.finish();
      const next = await s.waitFor('the next connection', () => {
        const c = s.socketEvents((e) => e.type === EventType.TCP_CLOSE && e.info.netns === ns.inode).slice(2 * CONNECTIONS);
        return c.length >= 2 ? c : undefined;
      });
      assert.ok(next.every((e) => e.info.socketId !== 0), 'both ends tracked');
      assert.equal(s.probes.readDrops()[KernelLossCause.SOCKET_MAP], lost, 'no new loss');
    } finally {
      session?.close();
      ns.delete();
    }
  });
});
