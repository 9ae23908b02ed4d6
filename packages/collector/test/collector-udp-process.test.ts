// End to end, the real kernel-collector binary against a test intake server: UDP datagrams
// counted per remote, exactly, and processes that exec and exit while it runs.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { after, test } from 'node:test';
import { SocketProtocol } from '@ebpf-net/protocol';
import { type CollectorProcess, CommDir, Endpoint, SKIP_REASON, freeUdpPort, killAll, pythonPath, startCollector } from './support/collector-process.js';
import { TestIntakeServer } from './support/intake-server.js';

const comms = SKIP_REASON ? undefined : new CommDir();
after(async () => {
  await killAll();
  comms?.remove();
});

for (const [host, tag] of [
  ['127.0.0.1', '4'],
  ['::1', '6'],
] as const) {
  test(`UDP: sendto/recvfrom between two loopback sockets give exact bytes and datagrams per remote (${host})`, { skip: SKIP_REASON, timeout: 40_000 }, async () => {
    const intake = await TestIntakeServer.start();
    let collector: CollectorProcess | undefined;
    try {
      collector = await startCollector(intake);
      const portA = await freeUdpPort();
      let portB = await freeUdpPort();
      while (portB === portA) portB = await freeUdpPort();
      const AB = [100, 200, 300, 1400];
      const BA = [50, 70];
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      const pair = Endpoint.start('udp-pair', [host, portA, portB, AB.join(','), BA.join(',')], comms!.link(`ebn-udp-pair${tag}`, pythonPath()));
      await pair.next(); // done: every datagram sent and received

      const want = {
        a: { bytesSent: sum(AB), packetsSent: AB.length, bytesReceived: sum(BA), packetsReceived: BA.length },
        b: { bytesSent: sum(BA), packetsSent: BA.length, bytesReceived: sum(AB), packetsReceived: AB.length },
      };
      /** `${session}:${socketId}` of the sockets bound to port A or B. */
      const ids = () => [...intake.findSockets({ localPort: portA }), ...intake.findSockets({ localPort: portB })].map((v) => `${v.sessionId}:${v.socketId}`);
      const measure = () => {
        const a = intake.findSocket({ localPort: portA }, SocketProtocol.UDP);
        const b = intake.findSocket({ localPort: portB }, SocketProtocol.UDP);
        if (!a || !b) return undefined;
        const ta = intake.udpTotalsOf(a, host, portB);
        const tb = intake.udpTotalsOf(b, host, portA);
        const pick = (t: typeof ta) => ({ bytesSent: t.bytesSent, packetsSent: t.packetsSent, bytesReceived: t.bytesReceived, packetsReceived: t.packetsReceived });
        return { a: pick(ta), b: pick(tb), views: { a, b } };
      };
      await intake
        .waitFor(() => {
          const m = measure();
          return m && m.a.packetsSent + m.a.packetsReceived + m.b.packetsSent + m.b.packetsReceived >= 2 * (AB.length + BA.length) && m;
        }, 10_000, 'udpStats of both sockets')
        .catch((e: Error) => {
          throw new Error(`${e.message}\nlostEvents: ${JSON.stringify(intake.all('lostEvents').map((l) => l.message))}\nseen: ${JSON.stringify(measure())}\nudp totals of these sockets: ${JSON.stringify([...intake.udpTotals()].filter(([k]) => ids().some((id) => k.startsWith(`${id}|`))))}`);
        });
      await new Promise((r) => setTimeout(r, 500)); // nothing more may come
      const m = measure()!;
      assert.deepEqual({ a: m.a, b: m.b }, want, 'per-remote totals of A (towards B) and B (towards A)');
      for (const [name, v, port] of [
        ['A', m.views.a, portA],
        ['B', m.views.b, portB],
      ] as const) {
        assert.equal(v.opens.at(-1)!.pid, pair.pid, `${name}: owned by the python process`);
        assert.equal(v.opens.at(-1)!.family, host === '::1' ? 10 : 2, `${name}: address family`);
        assert.equal(v.addresses.at(-1)!.localAddr, host, `${name}: local address`);
        assert.equal(v.addresses.at(-1)!.localPort, port, `${name}: local port`);
      }
      // Only the one remote each: no stray remotes (unknown address or port 0) for these sockets.
      const remotesOf = (v: { sessionId: number; socketId: number }) =>
        [...intake.udpTotals().keys()].filter((k) => k.startsWith(`${v.sessionId}:${v.socketId}|`)).map((k) => k.split('|').slice(1).join(':'));
      assert.deepEqual(remotesOf(m.views.a), [`${host}:${portB}`]);
      assert.deepEqual(remotesOf(m.views.b), [`${host}:${portA}`]);

      // Closing them: a socketClose each.
      pair.write('go');
      await pair.next();
      await pair.finish();
      await intake.waitFor(
        () => intake.findSocket({ localPort: portA }, SocketProtocol.UDP)?.closes.length && intake.findSocket({ localPort: portB }, SocketProtocol.UDP)?.closes.length,
        10_000,
        'socketClose of both UDP sockets',
      );
    } finally {
      collector?.kill();
      await killAll();
      await intake.stop();
    }
  });
}

// Each new UDP socket's first datagrams race the collector's poll: the poll reads the socket
// table, then the per-remote counters (deleting what it read); a socket whose first datagram
// falls in between (or whose announcement still waits in the ring buffer) has counters for a
// socket the collector does not know yet. Many pairs, spread over many polls, must all be exact.
test('UDP: 500 short-lived socket pairs over many polls, every one counted exactly', { skip: SKIP_REASON, timeout: 40_000 }, async () => {
  const intake = await TestIntakeServer.start();
  let collector: CollectorProcess | undefined;
  try {
    collector = await startCollector(intake);
    const many = Endpoint.start('udp-many', ['127.0.0.1', 500, 4]);
    const { pairs } = (await many.next(20_000)) as { pairs: Array<[number, number]> };
    const check = () =>
      pairs.map(([pa, pb]) => {
        const a = intake.findSockets({ localAddr: '127.0.0.1', localPort: pa }, SocketProtocol.UDP).at(-1);
        const b = intake.findSockets({ localAddr: '127.0.0.1', localPort: pb }, SocketProtocol.UDP).at(-1);
        const ta = a && intake.udpTotalsOf(a, '127.0.0.1', pb);
        const tb = b && intake.udpTotalsOf(b, '127.0.0.1', pa);
        return {
          pair: `${pa}->${pb}`,
          ok: ta?.bytesSent === 100 && ta.packetsSent === 1 && ta.bytesReceived === 30 && ta.packetsReceived === 1 &&
            tb?.bytesSent === 30 && tb.packetsSent === 1 && tb.bytesReceived === 100 && tb.packetsReceived === 1,
          a: ta, b: tb,
        };
      });
    await intake.waitFor(() => check().every((c) => c.ok), 10_000, 'exact counters for every pair').catch((e: Error) => {
      const bad = check().filter((c) => !c.ok);
      throw new Error(
        `${bad.length} of ${pairs.length} pairs wrong, e.g. ${JSON.stringify(bad.slice(0, 3))}\n` +
          `lostEvents: ${JSON.stringify(intake.all('lostEvents').map((l) => l.message))}\n${e.message}`,
      );
    });
    many.write('go');
    await many.next();
    await many.finish();
  } finally {
    collector?.kill();
    await killAll();
    await intake.stop();
  }
});

test('a process exec while running: processStart with the new comm; its exit: processExit', { skip: SKIP_REASON, timeout: 40_000 }, async () => {
  const intake = await TestIntakeServer.start();
  let collector: CollectorProcess | undefined;
  try {
    collector = await startCollector(intake);
    const sleepBin = realpathSync(execFileSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).trim());
    const comm = `ebn-exec-${process.pid % 100000}`;
    const path = comms!.link(comm, sleepBin);
    const child = spawn(path, ['0.3'], { stdio: 'ignore' });
    const pid = child.pid!;
    const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    assert.equal(code, 0);

    await intake
      .waitFor(
        () => intake.all('processStart').some((p) => p.message.pid === pid && p.message.comm === comm) && intake.all('processExit').some((p) => p.message.pid === pid),
        10_000,
        `processStart (comm ${comm}) and processExit of pid ${pid}`,
      )
      .catch((e: Error) => {
        const about = intake.connections.flatMap((c) => c.messages.filter((r) => (r.message as { pid?: number }).pid === pid));
        throw new Error(`${e.message}\nmessages about pid ${pid}: ${JSON.stringify(about)}`);
      });
    const starts = intake.all('processStart').filter((p) => p.message.pid === pid).map((p) => p.message);
    const exec = starts.find((s) => s.comm === comm)!;
    assert.equal(exec.ppid, process.pid, 'its parent is the test');
    assert.equal(exec.flags, 0, 'neither pre-existing nor snapshot');
    assert.match(exec.cmdline, new RegExp(`${comm}$`), 'the path exec\'d');
    assert.ok(starts.indexOf(exec) === starts.length - 1, 'the exec is the last processStart of the pid');
    const exits = intake.all('processExit').filter((p) => p.message.pid === pid);
    assert.equal(exits.length, 1, 'one processExit');
    assert.equal(exits[0]!.message.exitCode, 0, 'exit code 0');
    assert.ok(exits[0]!.message.timestampNs >= exec.startTimeNs, 'exits after it started');
  } finally {
    collector?.kill();
    await killAll();
    await intake.stop();
  }
});
