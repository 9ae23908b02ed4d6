// KernelProbes for a test: opened with every event collected, drained on demand, and closed in
// after(), with a check that nothing stayed in the kernel (no program, map or link of ours).
//
// Which kernel objects are "ours" comes from this process's own file descriptors
// (/proc/self/fd → anon_inode:bpf-prog|bpf-map|bpf_link, ids in /proc/self/fdinfo), so test files
// running in parallel never claim each other's programs.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { pino } from 'pino';
import { cgroup2Root } from '../../src/bpf/index.js';
import { EventType, KernelProbes, copyEvent, type KernelEvent, type KernelProbesOptions, type ProcessEvent, type SocketEvent } from '../../src/kernel/index.js';

/** Why the kernel tests cannot run here, or false. */
export const SKIP_NOT_ROOT: string | false =
  process.getuid?.() === 0 ? false : 'needs root: loading and attaching BPF programs requires CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN';

/** The attached programs of bpf/.output/ebpf_net.bpf.o (the C function names = bpftool's names). */
export const ATTACHED_PROGRAMS = [
  'tcp_state',
  'tcp_rst_rx',
  'tcp_rst_tx',
  'tcp_destroy',
  'sock_send',
  'sock_recv',
  'udp_sendmsg4',
  'udp_sendmsg6',
  'udp_recvmsg4',
  'udp_recvmsg6',
  'proc_exec',
  'proc_fork',
  'proc_exit',
] as const;

/** Every program of the object: the attached ones, and refresh_tcp and refresh_udp, which user space runs. */
export const PROGRAM_NAMES = [...ATTACHED_PROGRAMS, 'refresh_tcp', 'refresh_udp'] as const;

export const TCP = { ESTABLISHED: 1, SYN_SENT: 2, FIN_WAIT2: 5, CLOSE: 7, LAST_ACK: 9, LISTEN: 10 } as const;
export const AF_INET = 2;
export const AF_INET6 = 10;

/** Inode of this process's network namespace (the programs' `netns` for loopback traffic here). */
export const OWN_NETNS = statSync('/proc/self/ns/net').ino;

/** cgroup v2 id of this process (the inode of its cgroup directory), when cgroup v2 is mounted. */
export function ownCgroupId(): number | undefined {
  const root = cgroup2Root();
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  if (!root || !line) return undefined;
  return statSync(`${root}${line.slice(3)}`).ino;
}

export interface BpfIds {
  progs: number[];
  maps: number[];
  links: number[];
}

/** BPF programs, maps and links this process holds a file descriptor to. */
export function ownBpfIds(): BpfIds {
  const ids: BpfIds = { progs: [], maps: [], links: [] };
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    let info: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
      if (!target.startsWith('anon_inode:bpf')) continue;
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile (or the readdir fd itself)
    }
    const field = (name: string): number | undefined => {
      const m = new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(info);
      return m ? Number(m[1]) : undefined;
    };
    if (target === 'anon_inode:bpf-prog') ids.progs.push(field('prog_id')!);
    else if (target === 'anon_inode:bpf-map') ids.maps.push(field('map_id')!);
    else if (target === 'anon_inode:bpf_link') ids.links.push(field('link_id')!);
  }
  return ids;
}

function difference(after: BpfIds, before: BpfIds): BpfIds {
  return {
    progs: after.progs.filter((id) => !before.progs.includes(id)),
    maps: after.maps.filter((id) => !before.maps.includes(id)),
    links: after.links.filter((id) => !before.links.includes(id)),
  };
}

interface BpftoolEntry {
  id: number;
  name?: string;
  run_time_ns?: number;
  run_cnt?: number;
}

export function bpftoolList(kind: 'prog' | 'map' | 'link'): BpftoolEntry[] {
  const out = execFileSync('bpftool', [kind, 'list', '-j'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(out || '[]') as BpftoolEntry[];
}

/** Which of `ids` the kernel still has, as bpftool lists them. */
export function stillLoaded(ids: BpfIds): string[] {
  const left: string[] = [];
  const check = (kind: 'prog' | 'map' | 'link', wanted: number[]): void => {
    if (wanted.length === 0) return;
    for (const e of bpftoolList(kind)) if (wanted.includes(e.id)) left.push(`${kind} ${e.id}${e.name ? ` (${e.name})` : ''}`);
  };
  check('prog', ids.progs);
  check('map', ids.maps);
  check('link', ids.links);
  return left;
}

/**
 * Waits until the kernel has dropped every one of `ids`: raw tracepoint programs and their maps
 * are released after an RCU grace period, so this polls (default up to 5 s).
 */
export async function waitUntilReleased(ids: BpfIds, timeoutMs = 5000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = stillLoaded(ids);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const sessions = new Set<ProbeSession>();
const everOpened: BpfIds = { progs: [], maps: [], links: [] };

/** KernelProbes with every event kept in `events`. */
export class ProbeSession {
  private closed = false;

  private constructor(
    readonly probes: KernelProbes,
    /** Kernel objects this session holds. */
    readonly ids: BpfIds,
    /** Every event, in ring order. */
    readonly events: KernelEvent[],
  ) {}

  static async open(options: Partial<Omit<KernelProbesOptions, 'onEvent' | 'logger'>> = {}): Promise<ProbeSession> {
    const before = ownBpfIds();
    const events: KernelEvent[] = [];
    const probes = await KernelProbes.open({ logger: pino({ level: 'warn' }), onEvent: (e) => events.push(copyEvent(e)), ...options });
    const ids = difference(ownBpfIds(), before);
    everOpened.progs.push(...ids.progs);
    everOpened.maps.push(...ids.maps);
    everOpened.links.push(...ids.links);
    const session = new ProbeSession(probes, ids, events);
    sessions.add(session);
    return session;
  }

  drain(): number {
    return this.probes.drain();
  }

  socketEvents(filter: (e: SocketEvent) => boolean = () => true): SocketEvent[] {
    return this.events.filter((e): e is SocketEvent => e.kind === 'socket' && filter(e));
  }

  processEvents(filter: (e: ProcessEvent) => boolean = () => true): ProcessEvent[] {
    return this.events.filter((e): e is ProcessEvent => e.kind === 'process' && filter(e));
  }

  /** Drains until `check` returns a value (not undefined), or fails after `timeoutMs`. */
  async waitFor<T>(what: string, check: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.drain();
      const value = check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(10);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sessions.delete(this);
    this.probes.close();
  }
}

/**
 * For after(): closes any session a failed test left open, then checks that this process holds
 * no BPF object any more and that the kernel released every program, map and link opened here.
 */
export async function closeAllAndCheckReleased(): Promise<void> {
  for (const s of [...sessions]) s.close();
  const held = ownBpfIds();
  const heldOurs = {
    progs: held.progs.filter((id) => everOpened.progs.includes(id)),
    maps: held.maps.filter((id) => everOpened.maps.includes(id)),
    links: held.links.filter((id) => everOpened.links.includes(id)),
  };
  const fds = heldOurs.progs.length + heldOurs.maps.length + heldOurs.links.length;
  if (fds > 0) throw new Error(`file descriptors still open after close(): ${JSON.stringify(heldOurs)}`);
  const left = await waitUntilReleased(everOpened);
  if (left.length > 0) throw new Error(`still in the kernel 5 s after close(): ${left.join(', ')}`);
}

/** Events of one socket (by socket id) in ring order. */
export function ofSocket(events: readonly KernelEvent[], socketId: number): SocketEvent[] {
  return events.filter((e): e is SocketEvent => e.kind === 'socket' && e.info.socketId === socketId);
}

export const typeName = new Map<number, string>(Object.entries(EventType).map(([k, v]) => [v, k]));

/** 'TCP_LISTEN' for 4, ...: readable sequences in assertion messages. */
export function typeNames(events: readonly KernelEvent[]): string[] {
  return events.map((e) => typeName.get(e.type) ?? String(e.type));
}
