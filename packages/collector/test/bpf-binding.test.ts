// The libbpf binding against the real kernel: a fixture object (test/fixtures/fixture.bpf.c) is
// compiled, configured, loaded, attached, fed syscalls by a helper process, read, and closed.
// Root only: loading BPF needs CAP_BPF / CAP_SYS_ADMIN.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import {
  BpfAttachError,
  BpfConfigError,
  BpfLoadError,
  BpfObject,
  MapType,
  type MapBatchReader,
  openObjectCount,
  type AttachResult,
} from '../src/bpf/index.js';
import { buildFixtures, type Fixtures } from './fixtures/build-fixtures.js';
import { Trigger } from './fixtures/trigger.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'child.js');
const skip = process.getuid?.() === 0 ? false : 'needs root: loading BPF programs requires CAP_BPF / CAP_SYS_ADMIN';

// Indexes of the fixture's `stats` array.
const STAT_EVENTS = 0;
const STAT_RING_DROPS = 1;
const STAT_KEYED_FULL = 2;
const STAT_RAW_SYSCALLS = 3;
const STAT_EGRESS = 4;

const TAG = 0x1122334455667788n;
const FIXTURE_PROGRAMS = ['fx_getpid', 'fx_getpgid', 'fx_raw_enter', 'fx_egress', 'fx_missing_tp'];

interface LogLine {
  level: number;
  msg: string;
  libbpfLevel?: number;
}

function captureLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

/** The fixture, opened and configured for `trigger`'s pid; loaded unless told otherwise. */
async function openFixture(
  fixtures: Fixtures,
  trigger: Trigger,
  options: { logger?: Logger; configure?: (obj: BpfObject) => void; load?: boolean } = {},
): Promise<BpfObject> {
  const obj = await BpfObject.open(fixtures.fixture, { logger: options.logger ?? captureLogger('warn').logger });
  obj.setKnob('target_tgid', trigger.pid);
  obj.setKnob('tag', TAG);
  options.configure?.(obj);
  if (options.load ?? true) await obj.load();
  return obj;
}

/** The `stats` array, read with one batch call. */
function readStats(obj: BpfObject): number[] {
  const stats: number[] = [];
  obj
    .map('stats')
    .batchReader()
    .read((batch) => {
      for (let i = 0; i < batch.count; i++) {
        stats[batch.keys.readUInt32LE(i * 4)] = Number(batch.values.readBigUInt64LE(i * batch.valueStride));
      }
    });
  return stats;
}

/** u32 key → u64 value of a hash map, read in batches of `entries`. */
function readCounts(obj: BpfObject, mapName: string, entries?: number): { counts: Map<number, number>; reader: MapBatchReader } {
  const counts = new Map<number, number>();
  const reader = obj.map(mapName).batchReader(entries ? { entries } : {});
  reader.read((batch) => {
    for (let i = 0; i < batch.count; i++) counts.set(batch.keys.readUInt32LE(i * 4), Number(batch.values.readBigUInt64LE(i * 8)));
  });
  return { counts, reader };
}

interface Sample {
  seq: number;
  tag: bigint;
  tgid: number;
  length: number;
}

function collect(into: Sample[]) {
  return (data: Buffer, offset: number, length: number): void => {
    into.push({ seq: Number(data.readBigUInt64LE(offset)), tag: data.readBigUInt64LE(offset + 8), tgid: data.readUInt32LE(offset + 16), length });
  };
}

function fixturePrograms(): Map<number, string> {
  const list = JSON.parse(execFileSync('bpftool', ['prog', 'list', '-j'], { encoding: 'utf8' })) as Array<{ id: number; name?: string }>;
  return new Map(list.filter((p) => p.name && FIXTURE_PROGRAMS.includes(p.name)).map((p) => [p.id, p.name!]));
}

/** Waits until none of `ids` is loaded; raw tracepoint programs are released after an RCU grace period. */
async function waitUntilGone(ids: number[], timeoutMs = 5000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const loaded = fixturePrograms();
    const left = ids.filter((id) => loaded.has(id)).map((id) => `${loaded.get(id)} (id ${id})`);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function runChild(args: string[], command = process.execPath): { error?: string; code?: string; message?: string; [k: string]: unknown } {
  const out = execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').at(-1)!) as { error?: string; code?: string };
}

describe('libbpf binding (real kernel)', { skip }, () => {
  let fixtures: Fixtures;

  before(() => {
    fixtures = buildFixtures();
  });

  it('opens, sets knobs, resizes a map, loads', async () => {
    const trigger = Trigger.start(fixtures.trigger);
    try {
      const obj = await openFixture(fixtures, trigger, { load: false });
      assert.deepEqual(
        obj.knobs().map((k) => [k.name, k.size]),
        [
          ['target_tgid', 4],
          ['tag', 8],
        ],
      );
      assert.equal(obj.knob('target_tgid').readUInt32LE(0), trigger.pid);
      assert.equal(obj.knob('tag').readBigUInt64LE(0), TAG);
      assert.equal(obj.map('keyed').maxEntries, 16);
      obj.setMaxEntries('keyed', 10000);
      assert.equal(obj.map('events').type, MapType.RINGBUF);

      // Clear errors for what cannot work.
      assert.throws(() => obj.setKnob('no_such_knob', 1), (e: unknown) => e instanceof BpfConfigError && /no knob 'no_such_knob'.*target_tgid, tag/.test(e.message));
      assert.throws(() => obj.setKnob('target_tgid', 2 ** 32), BpfConfigError);
      assert.throws(() => obj.map('no_such_map'), BpfConfigError);

      await obj.load();
      assert.equal(obj.state, 'loaded');
      assert.equal(obj.map('keyed').maxEntries, 10000);
      assert.ok(obj.map('keyed').fd > 0);
      assert.throws(() => obj.setKnob('tag', 1), (e: unknown) => e instanceof BpfConfigError && /before load/.test(e.message));
      assert.throws(() => obj.setMaxEntries('keyed', 1), BpfConfigError);
      obj.close();
      assert.equal(obj.state, 'closed');
    } finally {
      await trigger.exit();
    }
  });

  it('a program the verifier rejects gives BpfLoadError with the verifier log; libbpf messages reach pino', async () => {
    const { logger, lines } = captureLogger('debug');
    const obj = await BpfObject.open(fixtures.bad, { logger });
    const error = await obj.load().then(
      () => assert.fail('the verifier accepted the bad fixture'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof BpfLoadError, `expected BpfLoadError, got ${String(error)}`);
    assert.equal(error.programName, 'fx_bad');
    assert.equal(error.code, 'EACCES');
    assert.ok(error.verifierLog.length > 0, 'empty verifier log');
    assert.match(error.verifierLog, /invalid mem access 'map_value_or_null'/);
    assert.match(error.message, /invalid mem access/);
    assert.equal(obj.state, 'closed', 'a failed load closes the object');
    // libbpf's printf-style messages arrive formatted (%s filled in), at their levels.
    assert.ok(error.libbpfLog.some((m) => m === "prog 'fx_bad': BPF program load failed: Permission denied"), error.libbpfLog.join('\n'));
    assert.ok(lines.some((l) => l.level === 40 && l.libbpfLevel === 0 && l.msg.includes("prog 'fx_bad': BPF program load failed")));
    assert.ok(lines.some((l) => l.level === 20 && l.libbpfLevel === 2 && l.msg.startsWith('loading object from ') && l.msg.endsWith('bad.bpf.o')));
  });

  it('verifierLogLevel 1 keeps the verifier log of accepted programs', async () => {
    const obj = await BpfObject.open(fixtures.fixture, { logger: captureLogger('warn').logger, verifierLogLevel: 1 });
    try {
      await obj.load();
      assert.match(obj.verifierLog('fx_getpid'), /processed \d+ insns/);
    } finally {
      obj.close();
    }
  });

  it('attaches each program on its own and reports each outcome', async () => {
    const trigger = Trigger.start(fixtures.trigger);
    const obj = await openFixture(fixtures, trigger);
    try {
      const results = await obj.attach();
      const byName = new Map<string, AttachResult>(results.map((r) => [r.name, r]));
      assert.deepEqual([...byName.keys()].sort(), [...FIXTURE_PROGRAMS].sort());
      for (const name of ['fx_getpid', 'fx_getpgid', 'fx_raw_enter', 'fx_egress']) {
        assert.equal(byName.get(name)!.status, 'attached', `${name}: ${byName.get(name)!.reason}`);
      }
      const missing = byName.get('fx_missing_tp')!;
      assert.equal(missing.status, 'unsupported');
      assert.equal(missing.errno, 2);
      assert.match(missing.reason, /ebpf_net_fixture\/does_not_exist/);

      // A program that must attach and cannot: a typed error, after the others attached.
      await assert.rejects(obj.attach({ required: ['fx_missing_tp'] }), (e: unknown) => e instanceof BpfAttachError && e.programName === 'fx_missing_tp' && e.code === 'ENOENT');

      // The raw tracepoint and the cgroup program run.
      await trigger.getpid(10);
      const udp = createSocket('udp4');
      udp.bind(0, '127.0.0.1');
      await once(udp, 'listening');
      const got = once(udp, 'message');
      udp.send('x', udp.address().port, '127.0.0.1');
      await got;
      udp.close();
      const stats = readStats(obj);
      assert.ok(stats[STAT_RAW_SYSCALLS]! >= 10, `raw tracepoint saw ${stats[STAT_RAW_SYSCALLS]} syscalls`);
      assert.ok(stats[STAT_EGRESS]! > 0, 'cgroup egress program saw no packet');
    } finally {
      obj.close();
      await trigger.exit();
    }
  });

  it('N getpid() calls give exactly N ring records with consecutive sequence numbers', async () => {
    const trigger = Trigger.start(fixtures.trigger);
    const obj = await openFixture(fixtures, trigger);
    try {
      await obj.attach({ required: ['fx_getpid'] });
      const samples: Sample[] = [];
      const ring = obj.ringBuffer('events', collect(samples));
      assert.equal(ring.drain(), 0);

      const N = 1000;
      await trigger.getpid(N);
      assert.equal(ring.pending(), N * 32, '24-byte samples take 32 bytes with their header');
      assert.equal(ring.drain(10), 10, 'drain(limit) stops at the limit');
      assert.equal(ring.drain(), N - 10);
      assert.equal(ring.drain(), 0);
      assert.equal(samples.length, N);
      samples.forEach((s, i) => {
        assert.equal(s.seq, i);
        assert.equal(s.tag, TAG);
        assert.equal(s.tgid, trigger.pid);
        assert.equal(s.length, 24);
      });

      // The timer drains on its own.
      ring.start(5);
      await trigger.getpid(N);
      const deadline = Date.now() + 2000;
      while (samples.length < 2 * N && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      ring.stop();
      assert.equal(samples.length, 2 * N);
      assert.ok(samples.every((s, i) => s.seq === i));

      const stats = readStats(obj);
      assert.equal(stats[STAT_EVENTS], 2 * N);
      assert.equal(stats[STAT_RING_DROPS], 0);
      assert.equal(ring.stats.records, 2 * N);

      // Idle, the timer backs off (10, 20, 40, 80, 80, ... ms: ~9 drains in 600 ms, not 60); the
      // first record after that is drained within the longest wait, and the pace is 10 ms again.
      ring.start(10);
      const idleFrom = ring.stats.drains;
      await new Promise((resolve) => setTimeout(resolve, 600));
      const idleDrains = ring.stats.drains - idleFrom;
      assert.ok(idleDrains >= 5 && idleDrains <= 14, `${idleDrains} drains in 600 ms idle`);
      const sent = Date.now();
      await trigger.getpid(1);
      while (samples.length < 2 * N + 1 && Date.now() - sent < 2000) await new Promise((resolve) => setTimeout(resolve, 1));
      assert.equal(samples.length, 2 * N + 1);
      assert.ok(Date.now() - sent < 80 + 50, `drained ${Date.now() - sent} ms after the record`);
      const busyFrom = ring.stats.drains;
      for (let i = 0; i < 10; i++) {
        await trigger.getpid(1);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(ring.stats.drains - busyFrom >= 6, `${ring.stats.drains - busyFrom} drains in ~100 ms of records`);
      ring.stop();
      ring.close();

      // A handler that throws: its record counts as consumed, the next drain goes on after it.
      let calls = 0;
      const seqs: number[] = [];
      const throwing = obj.ringBuffer('events', (data, offset) => {
        if (++calls === 3) throw new Error('handler failed');
        seqs.push(Number(data.readBigUInt64LE(offset)));
      });
      await trigger.getpid(5);
      assert.throws(() => throwing.drain(), /handler failed/);
      assert.equal(throwing.drain(), 2);
      const next = 2 * N + 11;
      assert.deepEqual(seqs, [next, next + 1, next + 3, next + 4]);

      // A handler that closes the object: the drain stops there, and the ring is unmapped after it.
      await trigger.getpid(5);
      let seen = 0;
      const closing = obj.ringBuffer('events', () => {
        seen++;
        obj.close();
      });
      assert.equal(closing.drain(), 1);
      assert.equal(seen, 1);
      assert.equal(closing.isClosed, true);
      assert.equal(obj.state, 'closed');
    } finally {
      obj.close();
      await trigger.exit();
    }
  });

  it('batch reads return the exact counts (resized map, ENOSPC growth, lookup-and-delete, delete)', async () => {
    const trigger = Trigger.start(fixtures.trigger);
    const obj = await openFixture(fixtures, trigger, { configure: (o) => o.setMaxEntries('keyed', 10000) });
    try {
      await obj.attach();
      const K = 5000;
      await trigger.keys(K);
      await trigger.getpid(123);
      const expected = new Map<number, number>();
      for (let k = 1; k <= K; k++) expected.set(k, (k % 3) + 1);

      // One call holds the whole map.
      const whole = readCounts(obj, 'keyed');
      assert.deepEqual(whole.counts, expected);
      assert.ok(whole.reader.stats.calls <= 2, `${whole.reader.stats.calls} calls`);

      // Small batches: many calls, the end found by ENOENT, still exact.
      const small = readCounts(obj, 'keyed', 256);
      assert.deepEqual(small.counts, expected);
      assert.ok(small.reader.stats.calls >= K / 256);

      // One entry per call: a bucket holding two keys answers ENOSPC, and the reader grows.
      const tiny = readCounts(obj, 'keyed', 1);
      assert.deepEqual(tiny.counts, expected);
      assert.ok(tiny.reader.stats.grown >= 1, 'no ENOSPC met');
      assert.ok(tiny.reader.capacity > 1);

      assert.equal(readStats(obj)[STAT_KEYED_FULL], 0, 'the resized map had room for every key');
      assert.deepEqual(readCounts(obj, 'counts').counts, new Map([[trigger.pid, 123]]));

      // Read and delete in the same calls; then the map is empty.
      const reader = obj.map('keyed').batchReader({ entries: 1000 });
      let seen = 0;
      assert.equal(reader.read((b) => (seen += b.count), { delete: true }), K);
      assert.equal(seen, K);
      assert.equal(reader.read(() => assert.fail('map not empty')), 0);

      // Delete by keys.
      const counts = obj.map('counts');
      const key = Buffer.alloc(4);
      key.writeUInt32LE(trigger.pid, 0);
      assert.equal(counts.deleteBatch(key, 1), 1);
      assert.equal(counts.lookup(key, Buffer.alloc(8)), false);
    } finally {
      obj.close();
      await trigger.exit();
    }
  });

  it('a mapped array (BPF_F_MMAPABLE) shows the values in place, 8-byte aligned; another map cannot be mapped', async () => {
    const trigger = Trigger.start(fixtures.trigger);
    const obj = await openFixture(fixtures, trigger);
    try {
      const mapped = obj.mappedArray('shown');
      assert.equal(mapped.valueStride, 16, '12-byte values, 8-byte aligned');
      assert.equal(mapped.values.length, 100 * 16);
      const map = obj.map('shown');
      const key = Buffer.alloc(4);
      const value = Buffer.alloc(12);
      for (const i of [0, 1, 57, 99]) {
        key.writeUInt32LE(i);
        value.writeUInt32LE(i * 3 + 1, 0);
        value.writeUInt32LE(0xdeadbeef, 4);
        value.writeUInt32LE(i, 8);
        map.update(key, value);
      }
      for (const i of [0, 1, 57, 99]) {
        const at: number = i * mapped.valueStride;
        assert.deepEqual([mapped.values.readUInt32LE(at), mapped.values.readUInt32LE(at + 4), mapped.values.readUInt32LE(at + 8)], [i * 3 + 1, 0xdeadbeef, i]);
      }
      assert.equal(mapped.values.readUInt32LE(2 * 16), 0, 'an entry never written is zero');
      assert.throws(() => obj.mappedArray('stats'), (e: Error) => e.name === 'BpfConfigError' && /BPF_F_MMAPABLE/.test(e.message));
    } finally {
      obj.close();
      await trigger.exit();
    }
  });

  it('a tiny ring under a burst: the kernel counts the drops, the records that arrived are intact', async () => {
    const trigger = Trigger.start(fixtures.trigger);
    const obj = await openFixture(fixtures, trigger, { configure: (o) => o.setMaxEntries('events', 4096) });
    try {
      await obj.attach({ required: ['fx_getpid'] });
      const samples: Sample[] = [];
      const ring = obj.ringBuffer('events', collect(samples));
      assert.equal(ring.size, 4096);
      const N = 1000;
      await trigger.getpid(N);
      ring.drain();
      const stats = readStats(obj);
      assert.ok(stats[STAT_RING_DROPS]! > 0, 'no drop counted');
      assert.equal(samples.length + stats[STAT_RING_DROPS]!, N, 'every event either arrived or was counted as dropped');
      // Nothing was consumed during the burst: the first records fit, every later one was dropped.
      samples.forEach((s, i) => {
        assert.equal(s.seq, i);
        assert.equal(s.tag, TAG);
        assert.equal(s.tgid, trigger.pid);
      });
    } finally {
      obj.close();
      await trigger.exit();
    }
  });

  it('close() leaves none of the programs in the kernel', async () => {
    const before = new Set(fixturePrograms().keys());
    const trigger = Trigger.start(fixtures.trigger);
    const obj = await openFixture(fixtures, trigger);
    await obj.attach();
    obj.ringBuffer('events', () => undefined);
    const ours = [...fixturePrograms().keys()].filter((id) => !before.has(id));
    assert.equal(ours.length, FIXTURE_PROGRAMS.length, 'bpftool lists our programs while attached');
    obj.close();
    obj.close(); // idempotent
    await trigger.exit();
    assert.deepEqual(await waitUntilGone(ours), []);
    assert.equal(openObjectCount(), 0);
  });

  it('SIGTERM: the signal handler closes every object, then exits 128 + 15', async () => {
    const before = new Set(fixturePrograms().keys());
    const child = spawn(process.execPath, [CHILD, 'hold', fixtures.fixture], { stdio: ['ignore', 'pipe', 'ignore'] });
    const [line] = (await once(child.stdout.setEncoding('utf8'), 'data')) as [string];
    assert.match(line, /"ready":true/);
    const ours = [...fixturePrograms().keys()].filter((id) => !before.has(id));
    assert.equal(ours.length, FIXTURE_PROGRAMS.length);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code, signal] = (await exited) as [number | null, string | null];
    assert.equal(signal, null, 'killed by the signal: the handler did not run');
    assert.equal(code, 143);
    assert.deepEqual(await waitUntilGone(ours), []);
  });

  it('without privileges: BpfNotPermittedError', () => {
    // Every capability dropped (bounding and inheritable sets): bpf() is refused with EPERM,
    // and the child, still uid 0, can read the checkout wherever it is (a uid without
    // privileges could not read one under /root).
    const result = runChild(['--inh-caps=-all', '--bounding-set=-all', '--', process.execPath, CHILD, 'load', fixtures.fixture], 'setpriv');
    assert.equal(result.error, 'BpfNotPermittedError', result.message);
    assert.equal(result.code, 'EPERM');
  });

  it('no kernel BTF: BtfMissingError', () => {
    // A private mount namespace where /sys/kernel/btf is an empty tmpfs.
    const result = runChild(['--mount', '--', 'sh', '-c', `mount -t tmpfs none /sys/kernel/btf && exec "${process.execPath}" "${CHILD}" open "${fixtures.fixture}"`], 'unshare');
    assert.equal(result.error, 'BtfMissingError', result.message);
  });

  it('ensureBpfMounts() mounts bpffs and tracefs where they are missing', () => {
    // A private mount namespace without them.
    const result = runChild(
      ['--mount', '--', 'sh', '-c', `umount /sys/fs/bpf 2>/dev/null; umount /sys/kernel/tracing 2>/dev/null; exec "${process.execPath}" "${CHILD}" mounts`],
      'unshare',
    );
    assert.deepEqual(result, { report: { bpffs: 'mounted', tracefs: 'mounted' }, bpffs: true, tracefs: true });
  });
});
