// Process plumbing for bench/collector-overhead: children in process groups of their own (so
// that stopping one stops all it started), CPU time from /proc, the BPF programs a process holds,
// free loopback ports, and wrk's output.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

export const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The first of `names` found on PATH (or as an absolute path), else undefined. */
export function which(...names: string[]): string | undefined {
  const dirs = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin']);
  for (const name of names) {
    if (name.startsWith('/')) {
      if (existsSync(name)) return name;
      continue;
    }
    for (const dir of dirs) if (dir && existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

/** A loopback TCP port nobody listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A child in a process group of its own, its output to a file, with a promise of its exit. */
export class Child {
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    readonly logPath: string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const out = openSync(logPath, 'a');
    // detached: setsid(), so the child leads a new process group and -pid reaches all of it.
    this.process = spawn(command, args, { detached: true, stdio: ['ignore', out, out], env });
    this.exited = new Promise((resolve) => {
      this.process.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        resolve(this.exitCode);
      });
      this.process.once('error', (error) => {
        this.exitCode = -1;
        this.tailNote = error.message;
        resolve(-1);
      });
    });
  }

  private tailNote = '';

  get pid(): number {
    return this.process.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitCode === undefined && this.pid > 0;
  }

  /** The last lines of its output, for error messages. */
  tail(lines = 15): string {
    try {
      return (readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') + this.tailNote).trim();
    } catch {
      return this.tailNote;
    }
  }

  /** Signals the whole group; true if it was there to signal. */
  signal(sig: NodeJS.Signals): boolean {
    if (this.pid <= 0) return false;
    try {
      process.kill(-this.pid, sig);
      return true;
    } catch {
      return false;
    }
  }

  /** `sig` to the group, then SIGKILL to the group after `graceMs`; resolves once the leader has exited. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    if (this.alive) {
      this.signal(sig);
      const timer = sleep(graceMs).then(() => 'timeout' as const);
      if ((await Promise.race([this.exited, timer])) === 'timeout') {
        console.error(`bench/collector-overhead: ${this.name} (pid ${this.pid}) did not stop within ${graceMs} ms of ${sig}; killing its process group`);
        this.signal('SIGKILL');
        await this.exited;
      }
    }
    // Whatever the leader left behind in its group (nginx's worker, say).
    this.signal('SIGKILL');
  }
}

/** utime and stime of a process (all its threads), in seconds; undefined once it is gone. */
export function cpuTimes(pid: number): { user: number; sys: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: the fields after it start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / CLOCK_TICKS, sys: Number(fields[12]) / CLOCK_TICKS }; // fields 14 and 15 of proc(5)
  } catch {
    return undefined;
  }
}

/** utime + stime of a process, in seconds; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const t = cpuTimes(pid);
  return t && t.user + t.sys;
}

/** Sum of cpuSeconds over every process of a process group (nginx: master and worker). */
export function groupCpuSeconds(pgid: number): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) total += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/**
 * Busy, interrupt (irq + softirq: loopback packets are mostly processed there, and with IRQ time
 * accounting that time is charged to no process) and total CPU seconds of the whole machine.
 */
export function machineCpu(): { busy: number; irq: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
  const idle = v[3]! + v[4]!;
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / CLOCK_TICKS, irq: (v[5]! + v[6]!) / CLOCK_TICKS, total: total / CLOCK_TICKS };
}

/** Processes holding BPF programs or links open, but for `exclude`: other tracers on this kernel. */
export function bpfHolders(exclude: Set<number>): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || exclude.has(Number(entry))) continue;
    try {
      for (const fd of readdirSync(`/proc/${entry}/fd`)) {
        const target = readlinkSync(`/proc/${entry}/fd/${fd}`);
        if (target === 'anon_inode:bpf-prog' || target === 'anon_inode:bpf_link') {
          out.push(Number(entry));
          break;
        }
      }
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

/** Ids of the BPF programs a process holds open (from the fdinfo of its bpf-prog fds). */
export function heldBpfPrograms(pid: number): number[] {
  const ids: number[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return ids;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf-prog') continue;
      const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.push(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return ids.sort((a, b) => a - b);
}

/** Which of `ids` are still loaded in the kernel (bpftool prog show id N succeeds). */
export function loadedPrograms(bpftool: string, ids: number[]): number[] {
  return ids.filter((id) => {
    try {
      execFileSync(bpftool, ['prog', 'show', 'id', String(id)], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether `pid` has an ESTABLISHED TCP connection of its own to loopback port `port`. */
export function connectedTo(pid: number, port: number): boolean {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return false;
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (f[2]!.endsWith(`:${hexPort}`) && f[3] === '01' && inodes.has(f[9]!)) return true;
    }
  }
  return false;
}

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  socketErrors: number;
  non2xx: number;
  latencyAvgMs: number | undefined;
}

/** Parses wrk's summary. */
export function parseWrk(text: string): WrkResult {
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(text);
  const rps = /Requests\/sec:\s*([\d.]+)/.exec(text);
  if (!done || !rps) throw new Error(`cannot read wrk's output:\n${text}`);
  const unit = { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[done[3] as 'us' | 'ms' | 's' | 'm'];
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const latency = /Latency\s+([\d.]+)(us|ms|s)\b/.exec(text);
  return {
    requests: Number(done[1]),
    seconds: Number(done[2]) * unit,
    rps: Number(rps[1]),
    socketErrors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    latencyAvgMs: latency ? Number(latency[1]) * { us: 1e-3, ms: 1, s: 1e3 }[latency[2] as 'us' | 'ms' | 's'] : undefined,
  };
}

/** The true median (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
