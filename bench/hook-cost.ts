// bench/hook-cost: what the per-call programs (sock_send, sock_recv of bpf/.output/ebpf_net.bpf.o)
// add to one TCP send and one receive on a live connection, in ns per call. The work is
// bench/native/hook-cost.c (compiled here with cc against libbpf): one loopback connection,
// chunks of send(1 byte) + recv(1 byte) alternating with the two programs attached and detached
// (a paired A/B: the drift of a shared VM hits both sides alike), the median difference taken.
// These two programs run on every send and receive of the machine, so this is the floor of the
// collector's cost on a keep-alive load.
//
//   node bench/dist/hook-cost.js [--rounds 60] [--iterations 20000]   (root; about 30 s)

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as kernel from '@ebpf-net/collector/kernel';
import { emit, parseBenchArgs } from './report.js';

const args = parseBenchArgs({ rounds: 60, iterations: 20_000 });
const SOURCE = fileURLToPath(new URL('../native/hook-cost.c', import.meta.url));

if (process.getuid?.() !== 0) {
  console.error('bench/hook-cost: needs root (loading BPF programs); run it with sudo');
  process.exit(2);
}
if (!existsSync(kernel.DEFAULT_OBJECT_PATH)) {
  console.error(`bench/hook-cost: ${kernel.DEFAULT_OBJECT_PATH} does not exist; build it first: bash bpf/build.sh`);
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'ebpf-net-hook-cost-'));
try {
  const binary = join(dir, 'hook-cost');
  execFileSync('cc', ['-O2', '-o', binary, SOURCE, '-lbpf'], { stdio: ['ignore', 'inherit', 'inherit'] });
  // Pinned (the loopback path runs on the same CPU), so that the scheduler moving it does not
  // count against one side.
  const out = execFileSync('taskset', ['-c', String(cpus().length - 1), binary, kernel.DEFAULT_OBJECT_PATH, String(args.rounds), String(args.iterations)], { encoding: 'utf8' });
  const r = JSON.parse(out) as { off_ns_per_iteration: number; on_ns_per_iteration: number; median_delta_ns_per_iteration: number; ns_per_call: number };
  emit({
    bench: 'hook-cost',
    case: 'send_recv_per_call',
    rounds: args.rounds,
    iterations_per_chunk: args.iterations,
    ns_per_call: r.ns_per_call,
    iteration_ns_without: r.off_ns_per_iteration,
    iteration_ns_with: r.on_ns_per_iteration,
    share_of_iteration: r.median_delta_ns_per_iteration / r.off_ns_per_iteration,
    note: 'an iteration is send(1 byte) + recv(1 byte) on a loopback TCP connection: two calls',
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
