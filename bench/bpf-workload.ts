// Workloads and machine plumbing for bench/bpf.ts: loopback traffic made by the real python3
// binary (sys.executable, not a version-manager shim), a network namespace of the bench's own,
// and the kernel.bpf_stats_enabled sysctl, each undone by the bench before it exits.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';

/**
 * Fills the event ring: n unconnected UDP sockets, each sends one datagram (UDP_OPEN) and
 * closes (UDP_CLOSE) — two 176-byte socket records per socket, the cheapest product events to
 * make in bulk. The receiver never reads (its queue overflows; the kernel drops the datagrams).
 */
const FILL = `
import socket, sys
n = int(sys.argv[1])
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(('127.0.0.1', 0))
dst = r.getsockname()
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b'x', dst)
    s.close()
r.close()
`;

/**
 * The fixed workload of the kernel-side cost figure; prints the seconds of each phase as JSON.
 *   tcp_pingpong: one connection, 'roundtrips' times: 100 bytes each way (send + recv on both ends)
 *   tcp_short:    'connections' short connections (connect, accept, close both)
 *   udp_pingpong: two sockets, 'udp' times: sendto + recvfrom of 100 bytes each way
 */
const COST = `
import json, socket, sys, time
rt, conns, udp = (int(x) for x in sys.argv[1:4])
out = {}
msg = b'p' * 100

def recv_exactly(s, n):
    got = 0
    while got < n:
        got += len(s.recv(n - got))

t = time.perf_counter()
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(128); port = srv.getsockname()[1]
c = socket.create_connection(('127.0.0.1', port)); a, _ = srv.accept()
for s in (c, a): s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(rt):
    c.send(msg); recv_exactly(a, 100)
    a.send(msg); recv_exactly(c, 100)
c.close(); a.close()
out['tcp_pingpong'] = time.perf_counter() - t

t = time.perf_counter()
for _ in range(conns):
    x = socket.create_connection(('127.0.0.1', port)); y, _ = srv.accept(); x.close(); y.close()
srv.close()
out['tcp_short'] = time.perf_counter() - t

t = time.perf_counter()
u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u1.bind(('127.0.0.1', 0))
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.bind(('127.0.0.1', 0))
a1, a2 = u1.getsockname(), u2.getsockname()
for _ in range(udp):
    u1.sendto(msg, a2); u2.recvfrom(2048)
    u2.sendto(msg, a1); u1.recvfrom(2048)
u1.close(); u2.close()
out['udp_pingpong'] = time.perf_counter() - t
print(json.dumps(out))
`;

let python: string | undefined;
export function pythonPath(): string {
  python ??= execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  return python;
}

function runPython(argv: string[], code: string, args: Array<string | number>): string {
  const r = spawnSync(argv[0]!, [...argv.slice(1), pythonPath(), '-c', code, ...args.map(String)], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`python workload failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

/** Runs the ring-filling workload inside `ns` (blocking: nothing drains meanwhile). */
export function fillRing(ns: Netns, sockets: number): void {
  runPython(['ip', 'netns', 'exec', ns.name], FILL, [sockets]);
}

export interface CostPhases {
  tcp_pingpong: number;
  tcp_short: number;
  udp_pingpong: number;
}

/** Runs the fixed loopback workload in this namespace; seconds per phase. */
export function costWorkload(roundtrips: number, connections: number, udp: number): CostPhases {
  return JSON.parse(runPython(['env'], COST, [roundtrips, connections, udp])) as CostPhases;
}

/** A network namespace of the bench's own, lo up. */
export class Netns {
  readonly inode: number;
  private deleted = false;

  constructor(readonly name: string) {
    execFileSync('ip', ['netns', 'add', name]);
    try {
      execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
      this.inode = statSync(`/run/netns/${name}`).ino;
    } catch (error) {
      execFileSync('ip', ['netns', 'del', name]);
      throw error;
    }
  }

  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    if (existsSync(`/run/netns/${this.name}`)) execFileSync('ip', ['netns', 'del', this.name]);
  }
}

const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/** Turns kernel.bpf_stats_enabled on; restore() puts back the value it had. */
export class BpfStats {
  private readonly old: string;
  private restored = false;

  constructor() {
    this.old = readFileSync(STATS_SYSCTL, 'utf8').trim();
    writeFileSync(STATS_SYSCTL, '1');
  }

  restore(): void {
    if (this.restored) return;
    this.restored = true;
    writeFileSync(STATS_SYSCTL, this.old);
  }
}
