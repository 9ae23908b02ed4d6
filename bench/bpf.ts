// bench/bpf: the collector's kernel side on the real kernel, with the product's BPF object
// (bpf/.output/ebpf_net.bpf.o). Root only. Prints one JSON line per figure:
//
//   ring_drain_*       events/s drained from the product's ring buffer by JavaScript, and CPU µs
//                      per 100k events: the ring is filled by real product events (UDP_OPEN /
//                      UDP_CLOSE of a loopback workload in a network namespace of the bench's own,
//                      the only one the programs trace) while nothing drains, then one drain() is
//                      timed alone. Two handlers: 'raw' reads the type and length of each record
//                      (the consumer's own cost) and 'parsed' runs the collector's readEvent() (an
//                      object per event, what KernelProbes does). Baseline in the same run: the
//                      same records walked in a heap Buffer by the same handler right after each
//                      drain (ratio per round). The product programs cannot make 1M events/s,
//                      but they need not: the ring fills slowly and drains fast, so the
//                      ring-drain fixture (packages/collector/test/fixtures) is not used.
//   map_read_*         µs per 10k entries of KernelProbes.readSockets' TCP path: refresh_tcp (run
//                      by BPF_PROG_TEST_RUN: walks the 65536 slots of the TCP table and copies the
//                      live entries into tcp_snapshot, which user space reads in place, mmapped),
//                      with 10k and 50k synthetic entries written into the table from user space;
//                      raw (refresh_tcp only) and parsed (then sockInfoReader per row). The
//                      entries are marked CLOSED: their keys point at no socket, so refresh_tcp
//                      copies them without reading counters (the ~9 field reads of a live socket
//                      are not in this figure). Baseline: one bpf_map_lookup_elem per entry (10k).
//   kernel_cost_*      run_time_ns / run_cnt per program (kernel.bpf_stats_enabled=1 for the run,
//                      restored after), under a fixed loopback workload with KernelProbes as the
//                      collector opens it; and the workload's wall time with the probes over
//                      without (ratio).
//
//   node bench/dist/bpf.js [--rounds R] [--sockets S] [--roundtrips T] [--connections C] [--udp U]
//   (about 40 s with the defaults)
//
// Everything is undone before exit (programs, maps, links,
// the namespace, the sysctl), also on SIGINT/SIGTERM (at the next checkpoint).

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import pino from 'pino';
import { BpfStats, Netns, costWorkload, fillRing, type CostPhases } from './bpf-workload.js';
import * as bpf from '@ebpf-net/collector/bpf';
import * as kernel from '@ebpf-net/collector/kernel';
import { emit, median, parseBenchArgs } from './report.js';

type BpfObject = bpf.BpfObject;
type KernelProbes = kernel.KernelProbes;

const args = parseBenchArgs({ rounds: 3, sockets: 150_000, roundtrips: 20_000, connections: 500, udp: 10_000 });
const RING_BYTES = 64 << 20; // 364k socket records (176 + 8 bytes)
const SOCK_RECORD = 184;
const logger = pino({ level: 'warn' });

if (process.getuid?.() !== 0) {
  console.error('bench/bpf: needs root (loading BPF programs); run it with sudo');
  process.exit(2);
}
if (!existsSync(kernel.DEFAULT_OBJECT_PATH)) {
  console.error(`bench/bpf: ${kernel.DEFAULT_OBJECT_PATH} does not exist; build it first: bash bpf/build.sh`);
  process.exit(2);
}

// --- cleanup, whatever happens ------------------------------------------------------------------
// SIGINT/SIGTERM only set a flag; the bench stops at its next checkpoint and cleans up on the way
// out. Exiting from the signal handler itself would deadlock when the signal lands during a
// threaded libbpf call (open, load, attach: the call's thread waits for the main thread to run
// libbpf's print callback, the main thread waits in exit for that thread).
const undo: Array<() => void> = [];
function cleanup(): void {
  for (const step of undo.splice(0).reverse()) {
    try {
      step();
    } catch (error) {
      console.error(`bench/bpf: cleanup step failed: ${(error as Error).message}`);
    }
  }
}
let interrupted: NodeJS.Signals | undefined;
class Interrupted extends Error {}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void (interrupted = signal));
/** Lets a pending signal in; throws if one came. */
async function checkpoint(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  if (interrupted) throw new Interrupted(interrupted);
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

// =================================================================================================
// 1. Ring buffer drain
// =================================================================================================

const RAW = 0;
const PARSED = 1;
const CAPTURE = 2;

async function ringDrain(): Promise<void> {
  const ns = new Netns(`ebpfnet-bench-${process.pid}`);
  undo.push(() => ns.delete());
  const obj: BpfObject = await bpf.BpfObject.open(kernel.DEFAULT_OBJECT_PATH, { logger });
  undo.push(() => obj.close());
  obj.setMaxEntries('events', RING_BYTES);
  obj.setKnob('filter_netns', 1); // only the bench's namespace: the ring holds nothing else
  obj.setKnob('udp_per_remote', 0); // 150k one-datagram sockets would only fill udp_remote
  await obj.load();
  const inode = Buffer.alloc(4);
  inode.writeUInt32LE(ns.inode);
  const one = Buffer.alloc(4);
  one.writeUInt32LE(1);
  obj.map('netns_allowed').update(inode, one);
  await obj.attach({ required: kernel.REQUIRED_PROGRAMS });

  // The handlers under test. 'raw': what any consumer must do (type, length, a check);
  // 'parsed': the collector's decoder, one object per event.
  let mode = RAW;
  let bad = 0;
  let sink = 0;
  let heap = Buffer.alloc(0);
  let heapEnd = 0;
  const raw = (data: Buffer, offset: number, length: number): void => {
    const type = data.readUInt32LE(offset);
    if (length < 8 || type === 0 || type > kernel.EventType.PROC_EXIT) bad++;
    sink += type;
  };
  const parsed = (data: Buffer, offset: number, length: number): void => {
    const event = kernel.readEvent(data, offset, length);
    if (event === undefined) bad++;
    else sink += event.type;
  };
  const ring = obj.ringBuffer('events', (data, offset, length) => {
    if (mode === RAW) raw(data, offset, length);
    else if (mode === PARSED) parsed(data, offset, length);
    else {
      // CAPTURE: the same framing as the ring (8-byte header, length padded to 8).
      if (heapEnd + 8 + length > heap.length) {
        const bigger = Buffer.alloc(Math.max(heap.length * 2, 1 << 20));
        heap.copy(bigger, 0, 0, heapEnd);
        heap = bigger;
      }
      heap.writeUInt32LE(length, heapEnd);
      data.copy(heap, heapEnd + 8, offset, offset + length);
      heapEnd += (length + 15) & ~7;
    }
  });

  const fill = (): number => {
    const dropsBefore = readDrop(obj);
    fillRing(ns, args.sockets);
    const pending = ring.pending();
    if (readDrop(obj) !== dropsBefore) throw new Error('the ring overflowed while filling: lower --sockets');
    return pending;
  };

  // Capture one fill into the heap (untimed), for the baseline.
  await checkpoint();
  mode = CAPTURE;
  fill();
  const captured = ring.drain();

  // Baseline: the captured records walked in a heap Buffer by the same handler, right after each
  // ring drain (same GC state, same moment of a noisy machine); the ratio is taken per round.
  const walk = (handler: (data: Buffer, offset: number, length: number) => void): number => {
    let p = 0;
    let n = 0;
    while (p < heapEnd) {
      const length = heap.readUInt32LE(p) & 0x3fffffff;
      handler(heap, p + 8, length);
      p += (length + 15) & ~7;
      n++;
    }
    return n;
  };
  const handlers: Record<number, (data: Buffer, offset: number, length: number) => void> = { [RAW]: raw, [PARSED]: parsed };
  const rates: Record<number, number[]> = { [RAW]: [], [PARSED]: [] };
  const cpu: Record<number, number[]> = { [RAW]: [], [PARSED]: [] };
  const heapRates: Record<number, number[]> = { [RAW]: [], [PARSED]: [] };
  const ratios: Record<number, number[]> = { [RAW]: [], [PARSED]: [] };
  walk(raw); // warm-up of both handlers
  walk(parsed);
  let events = 0;
  for (let round = 0; round < args.rounds; round++) {
    for (const m of [RAW, PARSED]) {
      await checkpoint();
      fill();
      mode = m;
      const c0 = cpuMicros();
      const t0 = process.hrtime.bigint();
      const n = ring.drain();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const c = cpuMicros() - c0;
      events = n;
      rates[m]!.push(n / seconds);
      cpu[m]!.push((c / n) * 100_000);
      const h0 = process.hrtime.bigint();
      const h = walk(handlers[m]!);
      const heapRate = h / (Number(process.hrtime.bigint() - h0) / 1e9);
      heapRates[m]!.push(heapRate);
      ratios[m]!.push(n / seconds / heapRate);
    }
  }

  for (const [m, name] of [[RAW, 'raw'], [PARSED, 'parsed']] as const) {
    emit({
      bench: 'bpf',
      figure: `ring_drain_${name}`,
      source: 'product ring (ebpf_net.bpf.o events map), UDP_OPEN/UDP_CLOSE records of a loopback workload',
      events_per_drain: events,
      record_bytes: SOCK_RECORD,
      rounds: args.rounds,
      events_per_s: median(rates[m]!),
      cpu_us_per_100k: median(cpu[m]!),
      baseline_heap_walk_events_per_s: median(heapRates[m]!),
      ratio_to_baseline: median(ratios[m]!),
      target: '>= 1e6 events/s on one core',
      bad_records: bad,
    });
  }
  // Every fill arrived whole (no ring losses): the drains above handled complete rings.
  emit({ bench: 'bpf', figure: 'ring_drain_check', events_per_fill: captured, kernel_drops: readDrop(obj), handler_sink_parity: sink & 1 });

  // ===============================================================================================
  // 2. Reads of the TCP table (same object: its table, untouched by the programs, which trace
  //    only the idle namespace now)
  // ===============================================================================================
  await checkpoint();
  mapReads(obj);

  obj.close();
  ns.delete();
}

function readDrop(obj: BpfObject): number {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(kernel.KernelLossCause.RINGBUF_FULL);
  const value = Buffer.alloc(8);
  return obj.map('drops').lookup(key, value) ? Number(value.readBigUInt64LE(0)) : 0;
}

// =================================================================================================
// 2. Reads of the TCP table
// =================================================================================================

/** A plausible TCP table entry: a closed TCP connection 10.0.x.y:port → 10.1.x.y:443. */
function syntheticEntry(i: number): { key: Buffer; value: Buffer } {
  const I = kernel.SOCK_INFO;
  const key = Buffer.alloc(8);
  key.writeBigUInt64LE(0xffff888100000000n + BigInt(i) * 2048n);
  const v = Buffer.alloc(I.size);
  v.writeBigUInt64LE(BigInt(i + 1), I.socketId);
  v.writeBigUInt64LE(1_000_000_000n + BigInt(i), I.startNs);
  v.writeBigUInt64LE(2_000_000_000n + BigInt(i), I.lastUpdateNs);
  v.writeBigUInt64LE(BigInt(i * 1448), I.bytesSent);
  v.writeBigUInt64LE(BigInt(i * 97), I.bytesReceived);
  v.writeBigUInt64LE(BigInt(i % 1000), I.sendCalls);
  v.writeBigUInt64LE(BigInt(i % 777), I.recvCalls);
  v.writeUInt32LE(1000 + (i % 50), I.pid);
  v.writeUInt32LE(4026531840, I.netns);
  v.writeUInt32LE(i % 5000, I.segsOut);
  v.writeUInt32LE(i % 4000, I.segsIn);
  v.writeUInt32LE(250 + (i % 100), I.srttUs);
  v.writeUInt32LE(10, I.sndCwnd);
  v.writeUInt32LE(kernel.SockFlag.ESTABLISHED | kernel.SockFlag.CLOSED, I.flags);
  v.writeUInt16LE(2, I.family);
  v.writeUInt16LE(6, I.protocol);
  v.writeUInt16LE(32768 + (i % 28000), I.sport);
  v.writeUInt16LE(443, I.dport);
  for (const [at, net] of [[I.saddr, 0], [I.daddr, 1]] as const) {
    v.writeUInt16LE(0xffff, at + 10);
    v[at + 12] = 10;
    v[at + 13] = net;
    v[at + 14] = (i >> 8) & 0xff;
    v[at + 15] = i & 0xff;
  }
  v[I.state] = 1;
  v[I.role] = 1;
  return { key, value: v };
}

function mapReads(obj: BpfObject): void {
  const table = obj.map('tcp_keys');
  const entries = obj.map('tcp_socks');
  const snapshot = obj.mappedArray('tcp_snapshot');
  const rounds = Math.max(args.rounds, 5);
  let sink = 0;
  let filled = 0;
  const slots: Buffer[] = [];
  const slotKey = (i: number): Buffer => {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(i);
    return k;
  };
  for (const size of [10_000, 50_000]) {
    for (; filled < size; filled++) {
      const { key, value } = syntheticEntry(filled);
      const slot = slotKey(filled);
      entries.update(slot, value);
      table.update(slot, key);
      slots.push(slot);
    }
    const time = (fn: () => number): number[] => {
      fn(); // warm-up
      const out: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const t0 = process.hrtime.bigint();
        const n = fn();
        const us = Number(process.hrtime.bigint() - t0) / 1e3;
        if (n !== size) throw new Error(`read ${n} entries of ${size}`);
        out.push((us / n) * 10_000);
      }
      return out;
    };
    const refreshed = (): number => obj.run(kernel.REFRESH_TCP_PROGRAM);
    const raw = time(refreshed);
    const readSockInfo = kernel.sockInfoReader(); // as KernelProbes.readSockets: one reused object
    const parsed = time(() => {
      const n = refreshed();
      for (let i = 0; i < n; i++) sink += readSockInfo(snapshot.values, i * snapshot.valueStride).bytesSent;
      return n;
    });
    const figure: Record<string, unknown> = {
      bench: 'bpf',
      figure: `map_read_${size / 1000}k`,
      map: 'tcp_snapshot (after refresh_tcp over tcp_keys/tcp_socks), mmapped',
      entries: size,
      table_slots: table.maxEntries,
      raw_us_per_10k: median(raw),
      parsed_us_per_10k: median(parsed),
    };
    if (size === 10_000) {
      // Baseline: one lookup per entry (an FFI call and a syscall each).
      const value = Buffer.alloc(entries.valueStride);
      const perEntry = time(() => {
        let n = 0;
        for (const slot of slots) {
          if (entries.lookup(slot, value)) {
            sink += readSockInfo(value, 0).bytesSent;
            n++;
          }
        }
        return n;
      });
      figure.baseline_lookup_elem_us_per_10k = median(perEntry);
      figure.parsed_over_lookup_elem = median(parsed) / median(perEntry);
    }
    emit(figure);
  }
  const free = Buffer.alloc(8);
  for (const slot of slots) table.update(slot, free);
  if (sink === -1) console.log(sink);
}

// =================================================================================================
// 3. Kernel-side cost per tracepoint hit
// =================================================================================================

/** prog id → fd info of this process's BPF program fds. */
function ownPrograms(): Map<number, { runTimeNs: number; runCnt: number }> {
  const out = new Map<number, { runTimeNs: number; runCnt: number }>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:bpf-prog') continue;
      const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
      const field = (name: string): number => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
      out.set(field('prog_id'), { runTimeNs: field('run_time_ns'), runCnt: field('run_cnt') });
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

async function kernelCost(): Promise<void> {
  const { roundtrips, connections, udp } = args;
  const stats = new BpfStats();
  undo.push(() => stats.restore());
  costWorkload(Math.min(roundtrips, 2000), 50, Math.min(udp, 1000)); // warm-up

  // Rounds of: the workload without probes (baseline), then with KernelProbes open as the
  // collector opens it. Program counters are summed over the rounds, by program name.
  const without: CostPhases[] = [];
  const withProbes: CostPhases[] = [];
  const perProgram = new Map<string, { hits: number; ns: number }>();
  for (let round = 0; round < args.rounds; round++) {
    await checkpoint();
    without.push(costWorkload(roundtrips, connections, udp));
    const before = new Set(ownPrograms().keys());
    const probes: KernelProbes = await kernel.KernelProbes.open({ logger, onEvent: () => undefined });
    undo.push(() => probes.close());
    const ours = [...ownPrograms().keys()].filter((id) => !before.has(id));
    const names = new Map<number, string>();
    for (const p of bpfPrograms()) if (ours.includes(p.id)) names.set(p.id, p.name);
    await checkpoint();
    const start = ownPrograms();
    withProbes.push(costWorkload(roundtrips, connections, udp));
    const end = ownPrograms();
    probes.drain();
    probes.close();
    for (const id of ours) {
      const name = names.get(id) ?? `id ${id}`;
      const row = perProgram.get(name) ?? { hits: 0, ns: 0 };
      row.hits += end.get(id)!.runCnt - start.get(id)!.runCnt;
      row.ns += end.get(id)!.runTimeNs - start.get(id)!.runTimeNs;
      perProgram.set(name, row);
    }
  }
  stats.restore();

  let totalNs = 0;
  let totalHits = 0;
  const rows = [...perProgram]
    .map(([program, { hits, ns }]) => {
      totalNs += ns;
      totalHits += hits;
      return { program, run_cnt: hits / args.rounds, run_time_ns: ns / args.rounds, ns_per_hit: hits > 0 ? ns / hits : 0 };
    })
    .sort((x, y) => y.run_time_ns - x.run_time_ns);
  for (const row of rows) emit({ bench: 'bpf', figure: 'kernel_cost_per_hit', per: 'workload run (mean of rounds)', ...row });
  // Socket syscalls of the workload: per round trip 2 sends + 2 receives; per short connection
  // connect, accept and two closes.
  const syscalls = 4 * (roundtrips + connections + udp);
  emit({
    bench: 'bpf',
    figure: 'kernel_cost_total',
    workload: { tcp_roundtrips: roundtrips, tcp_short_connections: connections, udp_roundtrips: udp },
    rounds: args.rounds,
    program_hits_per_run: totalHits / args.rounds,
    bpf_ns_per_run: totalNs / args.rounds,
    bpf_ns_per_hit: totalNs / Math.max(totalHits, 1),
    socket_syscalls_per_run: syscalls,
    bpf_ns_per_socket_syscall: totalNs / args.rounds / syscalls,
    note: 'kernel.bpf_stats_enabled adds its own clock reads to every run it measures',
  });
  for (const phase of Object.keys(without[0]!) as Array<keyof CostPhases>) {
    const a = without.map((p) => p[phase]);
    const b = withProbes.map((p) => p[phase]);
    emit({
      bench: 'bpf',
      figure: 'kernel_cost_workload',
      phase,
      rounds: args.rounds,
      seconds_without_probes: median(a),
      seconds_with_probes: median(b),
      ratio_with_over_without: median(b.map((x, i) => x / a[i]!)),
    });
  }
}

/** bpftool's view of the loaded programs (for their names; the counters come from fdinfo). */
function bpfPrograms(): Array<{ id: number; name: string }> {
  return JSON.parse(execFileSync('bpftool', ['prog', 'list', '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 }) || '[]') as Array<{ id: number; name: string }>;
}

// =================================================================================================

try {
  await ringDrain();
  await checkpoint();
  await kernelCost();
} catch (error) {
  if (!(error instanceof Interrupted)) throw error;
  console.error(`bench/bpf: ${error.message}: stopped, cleaned up`);
  process.exitCode = 130;
} finally {
  cleanup();
}
