// bench/hook-cost: what the programs of bpf/.output cost, in the kernel, measured paired (native
// helpers in bench/native, compiled here with cc against libbpf), for both builds of the socket
// programs (ebpf_net.bpf.o: raw tracepoints; ebpf_net.typed.bpf.o: BTF-typed tracepoints):
//   send_recv_per_call     what sock_send and sock_recv add to one TCP send and one receive on a
//                          live connection (hook-cost.c: chunks of send(1 byte) + recv(1 byte)
//                          with the two programs attached and detached). They run on every send
//                          and receive of the machine: the floor of the collector's cost on a
//                          keep-alive load. Also for the empty programs of the floor (below).
//   short_connection       what the programs add to one short loopback connection, both ends
//                          (conn-cost.c: connect, request, answer, close): every program of the
//                          object attached as the collector attaches it (cgroup ones on the
//                          cgroup v2 root: one that every inet socket ran at create or close
//                          would count here); the two builds alternate within each round, with
//                          a third object: programs of the same names on the same hooks that do
//                          nothing (native/floor.bpf.c, built here with clang-16), the floor any
//                          program there costs.
// The drift of a shared VM hits both sides of each pair alike; the median difference is taken.
//
//   node bench/dist/hook-cost.js [--rounds 60] [--iterations 20000] [--connections 1500]   (root; about 2 min)

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cgroup2Root } from '@ebpf-net/collector/bpf';
import * as kernel from '@ebpf-net/collector/kernel';
import { buildFloorObject } from './floor-object.js';
import { emit, parseBenchArgs } from './report.js';

const args = parseBenchArgs({ rounds: 60, iterations: 20_000, connections: 1500 });
const native = (name: string) => fileURLToPath(new URL(`../native/${name}.c`, import.meta.url));

if (process.getuid?.() !== 0) {
  console.error('bench/hook-cost: needs root (loading BPF programs); run it with sudo');
  process.exit(2);
}
if (!existsSync(kernel.DEFAULT_OBJECT_PATH)) {
  console.error(`bench/hook-cost: ${kernel.DEFAULT_OBJECT_PATH} does not exist; build it first: bash bpf/build.sh`);
  process.exit(2);
}
const cgroupRoot = cgroup2Root();
if (!cgroupRoot) {
  console.error('bench/hook-cost: no cgroup v2 hierarchy is mounted (the cgroup programs attach to its root)');
  process.exit(2);
}

const objects = [{ hooks: 'raw', path: kernel.DEFAULT_OBJECT_PATH }, { hooks: 'typed', path: kernel.typedObjectPath(kernel.DEFAULT_OBJECT_PATH) }].filter((o) => existsSync(o.path));
const dir = mkdtempSync(join(tmpdir(), 'ebpf-net-hook-cost-'));
try {
  const build = (name: string): string => {
    const binary = join(dir, name);
    execFileSync('cc', ['-O2', '-o', binary, native(name), '-lbpf'], { stdio: ['ignore', 'inherit', 'inherit'] });
    return binary;
  };
  // Pinned (the loopback path runs on the same CPU), so that the scheduler moving it does not
  // count against one side.
  const pinned = (binary: string, binaryArgs: string[]): string => execFileSync('taskset', ['-c', String(cpus().length - 1), binary, ...binaryArgs], { encoding: 'utf8' });

  // The floor: empty programs on the same hooks (typed, like the build the collector prefers).
  const measured = [...objects, { hooks: 'floor (empty programs, typed)', path: buildFloorObject(dir) }];

  const hookCost = build('hook-cost');
  for (const { hooks, path } of measured) {
    const r = JSON.parse(pinned(hookCost, [path, String(args.rounds), String(args.iterations)])) as { off_ns_per_iteration: number; on_ns_per_iteration: number; median_delta_ns_per_iteration: number; ns_per_call: number };
    emit({
      bench: 'hook-cost',
      case: 'send_recv_per_call',
      hooks,
      rounds: args.rounds,
      iterations_per_chunk: args.iterations,
      ns_per_call: r.ns_per_call,
      iteration_ns_without: r.off_ns_per_iteration,
      iteration_ns_with: r.on_ns_per_iteration,
      share_of_iteration: r.median_delta_ns_per_iteration / r.off_ns_per_iteration,
      note: 'an iteration is send(1 byte) + recv(1 byte) on a loopback TCP connection: two calls',
    });
  }

  const connCost = build('conn-cost');
  const lines = pinned(connCost, [cgroupRoot, String(args.rounds), String(args.connections), ...measured.map((o) => o.path)]).trim().split('\n');
  const perConnection = lines.map((l) => JSON.parse(l) as { median_ns_per_connection: number; q1_ns: number; q3_ns: number });
  perConnection.forEach((r, i) => {
    emit({
      bench: 'hook-cost',
      case: 'short_connection',
      hooks: measured[i]!.hooks,
      rounds: args.rounds,
      connections_per_chunk: args.connections,
      ns_per_connection: r.median_ns_per_connection,
      q1_ns: r.q1_ns,
      q3_ns: r.q3_ns,
      ...(i > 0 ? { ratio_to_raw: r.median_ns_per_connection / perConnection[0]!.median_ns_per_connection } : {}),
      note: 'connect, 3-byte request, 3-byte answer, close, on loopback: both ends of one connection',
    });
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
