// The real kernel-collector binary (dist/src/cli.js) as a child process, and the traffic
// endpoints (collector-endpoints.py) the end-to-end tests drive, for test/collector-*.test.ts.
//
// Every child is tracked and killed by its pid (SIGKILL) if a test leaves it running; the
// collector is asked to stop with SIGTERM first.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestIntakeServer } from './intake-server.js';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/test/support
/** The collector's command-line entry point, compiled. */
export const COLLECTOR_CLI = resolve(HERE, '../../src/cli.js');
/** collector-endpoints.py, in the source tree (tsc does not copy it to dist). */
export const ENDPOINTS_PY = ((): string => {
  for (const dir of [HERE, resolve(HERE, '../../../test/support')]) {
    const p = join(dir, 'collector-endpoints.py');
    if (existsSync(p)) return p;
  }
  throw new Error(`cannot find test/support/collector-endpoints.py from ${HERE}`);
})();

/** Why these tests cannot run here, or false. */
export const SKIP_REASON: string | false =
  process.getuid?.() !== 0
    ? 'needs root: the kernel-collector loads and attaches BPF programs (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)'
    : !existsSync(COLLECTOR_CLI)
      ? `the collector is not built (${COLLECTOR_CLI} missing): run npx tsc -b`
      : false;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function track(child: ChildProcess): Promise<ExitStatus> {
  live.add(child);
  return new Promise((resolvePromise) => {
    child.once('close', (code, signal) => {
      live.delete(child);
      resolvePromise({ code, signal });
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `predicate` every 50 ms until it is truthy; rejects after `timeoutMs`. */
export async function until<T>(predicate: () => T | undefined | null | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await sleep(50);
  }
}

export interface CollectorOptions {
  /** The intake's port (EBPF_NET_INTAKE_PORT). */
  port?: number;
  host?: string;
  /** Variables to set (a string) or remove (undefined) on top of this process's environment. */
  env?: Record<string, string | undefined>;
  /** Arguments; by default --no-log-file --log-console --interval 200ms. */
  args?: string[];
  /** EBPF_NET_DATA_DIR; by default a new empty directory, so that no run sees another's saved state. */
  dataDir?: string;
}

/** One running kernel-collector. */
export class CollectorProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<ExitStatus>;
  status: ExitStatus | undefined;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => void (this.stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => void (this.stderr += s));
    this.exited = track(child).then((s) => (this.status = s));
  }

  static start(options: CollectorOptions = {}): CollectorProcess {
    const env: Record<string, string | undefined> = {
      ...process.env,
      EBPF_NET_INTAKE_HOST: options.host ?? '127.0.0.1',
      EBPF_NET_INTAKE_PORT: options.port === undefined ? undefined : String(options.port),
      // Read this machine's /proc and /etc, never a /hostfs that may exist here.
      EBPF_NET_HOST_DIR: '',
      EBPF_NET_LOG_LEVEL: undefined,
      EBPF_NET_INTERVAL: undefined,
      EBPF_NET_NETNS: undefined,
      EBPF_NET_DATA_DIR: options.dataDir ?? mkdtempSync(join(tmpdir(), 'ebpf-net-collector-data-')),
    };
    for (const [k, v] of Object.entries(options.env ?? {})) env[k] = v;
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const args = options.args ?? ['--no-log-file', '--log-console', '--interval', '200ms'];
    const child = spawn(process.execPath, [COLLECTOR_CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    return new CollectorProcess(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.status === undefined;
  }

  /** Both streams, for failure messages. */
  output(): string {
    return `--- collector stdout ---\n${this.stdout}\n--- collector stderr ---\n${this.stderr}`;
  }

  /** Waits for a log line (stdout or stderr) matching `pattern`. */
  async waitForLog(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = (this.stderr + '\n' + this.stdout).split('\n').find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (!this.running) throw new Error(`the collector exited (${JSON.stringify(this.status)}) before logging ${pattern}\n${this.output()}`);
      if (Date.now() > deadline) throw new Error(`the collector did not log ${pattern} in ${timeoutMs} ms\n${this.output()}`);
      await sleep(50);
    }
  }

  /** Sends `signal` and waits for the exit; SIGKILL after `timeoutMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<ExitStatus> {
    if (this.running) this.child.kill(signal);
    const timer = setTimeout(() => this.kill(), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  /** Ids of the BPF programs this collector holds (its prog and link fds, from /proc/<pid>/fdinfo). */
  bpfProgramIds(): Set<number> {
    return bpfProgramIdsOf(this.pid);
  }
}

/** BPF program ids referenced by the fds of process `pid` (programs, and links to programs). */
export function bpfProgramIdsOf(pid: number): Set<number> {
  const ids = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return ids;
  }
  for (const fd of fds) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link !== 'anon_inode:bpf-prog' && link !== 'anon_inode:bpf_link') continue;
      const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

export interface BpfProgram {
  id: number;
  name?: string;
  type?: string;
}

/** `bpftool prog list`, as JSON. */
export function bpfPrograms(): BpfProgram[] {
  return JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'list'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as BpfProgram[];
}

/** A loopback TCP port nobody listens on now (the kernel picks it; it is free again at once). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r, j) => server.once('error', j).listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * A loopback TCP port outside the kernel's ephemeral range that nobody listens on now: for a
 * server that the test stops and starts again on the same port (an ephemeral port could be
 * taken meanwhile by some connection's local end).
 */
export async function freeListenPort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    // the usual default
  }
  const floor = Math.max(1024, Math.min(20_000, low - 2000));
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = floor + Math.floor(Math.random() * (low - floor));
    const server = createServer();
    const ok = await new Promise<boolean>((r) => {
      server.once('error', () => r(false));
      server.listen({ host: '127.0.0.1', port, exclusive: true }, () => r(true));
    });
    if (ok) {
      await new Promise<void>((r) => server.close(() => r()));
      return port;
    }
  }
  return freePort();
}

/** A loopback UDP port nobody has bound now. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((r, j) => socket.once('error', j).bind(0, '127.0.0.1', () => r()));
  const { port } = socket.address();
  await new Promise<void>((r) => socket.close(() => r()));
  return port;
}

let python: string | undefined;
/** The python3 interpreter itself (sys.executable), not a version manager's shim. */
export function pythonPath(): string {
  python ??= execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  return python;
}

/**
 * A directory of symlinks to real executables under names the test chooses: exec'd through
 * such a link, a process's comm is the link's name (the kernel takes it from the path exec'd).
 */
export class CommDir {
  readonly path = mkdtempSync(join(tmpdir(), 'ebpfnet-collector-test-'));

  /** A path that runs `target` with the comm `name` (at most 15 characters). */
  link(name: string, target: string): string {
    if (name.length > 15) throw new Error(`comm ${name} is longer than 15 characters`);
    const p = join(this.path, name);
    symlinkSync(target, p);
    return p;
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** A running collector-endpoints.py mode: JSON lines out, commands in. */
export class Endpoint {
  private buffered = '';
  private readonly lines: Array<Record<string, unknown>> = [];
  private waiter: (() => void) | undefined;
  private stderr = '';
  readonly exited: Promise<ExitStatus>;
  private done = false;
  private status: ExitStatus | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly label: string,
  ) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.buffered += chunk;
      let i: number;
      while ((i = this.buffered.indexOf('\n')) >= 0) {
        const text = this.buffered.slice(0, i);
        this.buffered = this.buffered.slice(i + 1);
        try {
          this.lines.push(JSON.parse(text) as Record<string, unknown>);
        } catch {
          this.lines.push({ text });
        }
      }
      this.waiter?.();
    });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => void (this.stderr += s));
    child.stdin!.on('error', () => undefined);
    this.exited = track(child).then((s) => {
      this.done = true;
      this.status = s;
      this.waiter?.();
      return s;
    });
  }

  /**
   * Runs `collector-endpoints.py mode args...` with python3 exec'd as `python` (a path from
   * CommDir.link, to give the process a comm of the test's choosing).
   */
  static start(mode: string, args: Array<string | number>, python = pythonPath()): Endpoint {
    const child = spawn(python, [ENDPOINTS_PY, mode, ...args.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new Endpoint(child, `collector-endpoints.py ${mode} ${args.join(' ')}`);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The next JSON line. */
  async next(timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.done) throw new Error(`${this.label} exited (${JSON.stringify(this.status)}) before printing; stderr: ${this.stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`${this.label} printed nothing in ${timeoutMs} ms; stderr: ${this.stderr.trim()}`);
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 100);
      });
      this.waiter = undefined;
    }
    return this.lines.shift()!;
  }

  /** Sends a command line and returns its answer. */
  async command(line: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    this.child.stdin!.write(`${line}\n`);
    return this.next(timeoutMs);
  }

  /** Writes a line without waiting for an answer. */
  write(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Ends stdin and waits for a clean exit. */
  async finish(timeoutMs = 10_000): Promise<void> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    const status = await this.exited.finally(() => clearTimeout(timer));
    if (status.code !== 0) throw new Error(`${this.label} exited with ${status.code ?? status.signal}; stderr: ${this.stderr.trim()}`);
  }

  kill(): void {
    if (!this.done) this.child.kill('SIGKILL');
  }
}

/**
 * Starts a collector against the test intake and waits for its first snapshot. On a timeout it
 * is killed, and the error carries its output.
 */
export async function startCollector(intake: TestIntakeServer, options: Omit<CollectorOptions, 'port'> = {}): Promise<CollectorProcess> {
  const collector = CollectorProcess.start({ ...options, port: intake.port });
  try {
    await intake.waitFor(() => intake.connections[0]?.snapshot(), 20_000, "the collector's first snapshot");
  } catch (error) {
    collector.kill();
    throw new Error(`${(error as Error).message}\n${collector.output()}`);
  }
  return collector;
}

/** Kills every child (collector or endpoint) still running, by pid, and waits for them. */
export async function killAll(): Promise<void> {
  const left = [...live].filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(
    left.map(
      (c) =>
        new Promise<void>((r) => {
          c.once('close', () => r());
          c.kill('SIGKILL');
        }),
    ),
  );
}
