// Ring buffer overflow on the real kernel: a 4 KiB ring that nobody drains during a burst of
// 200 short TCP connections. Every event the programs produce is either in the ring or counted
// as lost (drops[RINGBUF_FULL]): nothing is lost silently. The burst runs in a network namespace
// of its own and the probes trace only that namespace, so the test knows exactly how many
// events the burst produces. Root only.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { EventType, KernelLossCause } from '../src/kernel/index.js';
import { Child, killChildren } from './support/children.js';
import { Netns, leftoverNamespaces } from './support/netns.js';
import { ProbeSession, SKIP_NOT_ROOT, closeAllAndCheckReleased, sleep, typeNames } from './support/probes.js';

const CONNECTIONS = 200;
const RING_BYTES = 4096;
/**
 * What one `clients.py burst` run in the namespace produces:
 *   process: exec of python (ip netns exec setns()es, then execs it), exit of python
 *   sockets: listen, listen close, and per connection its two closes (a new connection is an
 *            entry in the socket map, not an event)
 */
const PER_CONNECTION = 2;
const expectedEvents = (connections: number): number => 2 + 2 + PER_CONNECTION * connections;

describe('kernel: ring buffer overflow', { skip: SKIP_NOT_ROOT }, () => {
  after(async () => {
    await killChildren();
    await closeAllAndCheckReleased();
    assert.deepEqual(leftoverNamespaces(), [], 'network namespaces left behind');
  });

  it(`a ${RING_BYTES}-byte ring, not drained during ${CONNECTIONS} connections: drained + dropped = produced, and the ring recovers`, async () => {
    const ns = Netns.create('ring');
    let session: ProbeSession | undefined;
    try {
      session = await ProbeSession.open({ ringBytes: RING_BYTES, drainIntervalMs: 0, netns: [ns.inode] });
      const s = session;
      assert.deepEqual(s.probes.readDrops(), [0, 0, 0, 0, 0, 0, 0, 0], 'no drops before the burst');

      // --- the burst, with nothing draining
      const burst = Child.python('burst', ['127.0.0.1', CONNECTIONS], { netns: ns });
      const b = await burst.next<{ pid: number; port: number }>();
      await burst.finish();
      await sleep(50);
      assert.equal(s.events.length, 0, 'nothing was drained during the burst');

      const delivered = s.drain();
      const drops = s.probes.readDrops();
      const produced = expectedEvents(CONNECTIONS);
      assert.ok(drops[KernelLossCause.RINGBUF_FULL]! > 0, 'the ring overflowed and the losses were counted');
      assert.equal(delivered + drops[KernelLossCause.RINGBUF_FULL]!, produced, `delivered ${delivered} + dropped ${drops[KernelLossCause.RINGBUF_FULL]} = produced ${produced}`);
      assert.equal(drops[KernelLossCause.SOCKET_MAP], 0, 'no socket map losses');
      // At most what fits: 176-byte socket records (184 with the header), 328-byte process ones.
      assert.ok(delivered > 0 && delivered <= RING_BYTES / 184, `delivered ${delivered}`);

      // --- what did arrive parses: known types, this namespace, this burst's process and port
      assert.equal(s.probes.stats.unknownRecords, 0);
      assert.equal(s.probes.stats.events, delivered);
      for (const e of s.events) {
        if (e.kind === 'process') {
          assert.ok(e.type === EventType.PROC_EXEC || e.type === EventType.PROC_EXIT, `process event ${typeNames([e])}`);
          assert.equal(e.pid, b.pid);
          assert.equal(e.netns, ns.inode);
        } else {
          assert.ok(e.type >= EventType.TCP_LISTEN && e.type <= EventType.TCP_CLOSE, `socket event ${typeNames([e])}`);
          assert.equal(e.info.netns, ns.inode);
          assert.equal(e.info.protocol, 6);
          assert.ok(e.info.localPort === b.port || e.info.remotePort === b.port, `port ${e.info.localPort} → ${e.info.remotePort}`);
          assert.equal(e.info.localAddr, '127.0.0.1');
        }
      }

      // --- the ring works again once drained: one more (small) run arrives whole
      const dropped = drops[KernelLossCause.RINGBUF_FULL]!;
      const again = Child.python('burst', ['127.0.0.1', 1], { netns: ns });
      await again.next();
      await again.finish();
      await sleep(50);
      const after = s.drain();
      assert.equal(after, expectedEvents(1), `the second run: ${typeNames(s.events.slice(delivered)).join(', ')}`);
      assert.equal(s.probes.readDrops()[KernelLossCause.RINGBUF_FULL], dropped, 'no new drops');
      const second = typeNames(s.events.slice(delivered));
      assert.equal(second[0], 'PROC_EXEC');
      assert.equal(second.at(-1), 'PROC_EXIT');
      assert.equal(second[1], 'TCP_LISTEN');
      assert.deepEqual(second.slice(2, -1).sort(), ['TCP_CLOSE', 'TCP_CLOSE', 'TCP_LISTEN_CLOSE']);
    } finally {
      session?.close();
      ns.delete();
    }
  });
});
