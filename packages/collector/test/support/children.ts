// Child processes for the kernel tests: test/support/clients.py run by the real python3 binary
// (not a version-manager shim, whose shells would add process events of their own), optionally
// inside a network namespace through `ip netns exec` (which execs, so the child's pid is
// python's). Every child is killed, by its pid, if a test leaves it running.

import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.js';

/** test/support in the source tree (this file runs from dist/test/support). */
const SUPPORT_DIR = ((): string => {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [here, resolve(here, '../../../test/support')]) {
    if (existsSync(join(candidate, 'clients.py'))) return candidate;
  }
  throw new Error(`cannot find test/support/clients.py from ${here}`);
})();
export const CLIENTS_PY = join(SUPPORT_DIR, 'clients.py');

let python: string | undefined;
/** The python3 interpreter itself (sys.executable), resolved once. */
export function pythonPath(): string {
  if (!python) {
    try {
      python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    } catch (error) {
      throw new Error(`the kernel tests drive traffic with python3, which did not run: ${(error as Error).message}`);
    }
  }
  return python;
}

const live = new Set<Child>();

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running clients.py mode: JSON lines out, lines in. */
export class Child {
  private buffered = '';
  private readonly lines: unknown[] = [];
  private waiters: Array<{ resolve: (line: unknown) => void; reject: (error: Error) => void }> = [];
  private stderr = '';
  readonly exited: Promise<ExitStatus>;
  private done = false;

  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    readonly label: string,
  ) {
    live.add(this);
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk: string) => void (this.stderr += chunk));
    proc.stdout.on('data', (chunk: string) => {
      this.buffered += chunk;
      let i: number;
      while ((i = this.buffered.indexOf('\n')) >= 0) {
        const text = this.buffered.slice(0, i);
        this.buffered = this.buffered.slice(i + 1);
        let line: unknown;
        try {
          line = JSON.parse(text);
        } catch {
          line = { text };
        }
        const waiter = this.waiters.shift();
        if (waiter) waiter.resolve(line);
        else this.lines.push(line);
      }
    });
    this.exited = new Promise((resolve) => {
      proc.once('close', (code, signal) => {
        this.done = true;
        live.delete(this);
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${label} exited (code ${code}, signal ${signal}) before printing; stderr: ${this.stderr.trim()}`));
        resolve({ code, signal });
      });
    });
    // stdin of a child that exited early: ignore EPIPE.
    proc.stdin.on('error', () => undefined);
  }

  /** Runs `clients.py mode args...`, inside `netns` when given. */
  static python(mode: string, args: Array<string | number>, options: { netns?: Netns } = {}): Child {
    const argv = [pythonPath(), CLIENTS_PY, mode, ...args.map(String)];
    const [command, ...rest] = options.netns ? options.netns.wrap(argv) : argv;
    const child = spawn(command!, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
    return new Child(child, `clients.py ${mode}`);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** The next JSON line the child prints. */
  next<T = Record<string, unknown>>(timeoutMs = 10_000): Promise<T> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued as T);
    if (this.done) return Promise.reject(new Error(`${this.label} has exited; stderr: ${this.stderr.trim()}`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.label} printed nothing in ${timeoutMs} ms; stderr: ${this.stderr.trim()}`));
      }, timeoutMs);
      const done = (line: unknown): void => {
        clearTimeout(timer);
        resolve(line as T);
      };
      this.waiters.push({
        resolve: done,
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  /** Lets a child waiting on stdin go on. */
  go(): void {
    this.proc.stdin.write('go\n');
  }

  /** Waits for the exit; rejects unless it exits with 0 within the time. */
  async finish(timeoutMs = 10_000): Promise<void> {
    this.proc.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    const status = await Promise.race([
      this.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${this.label} still running after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (status.code !== 0) throw new Error(`${this.label} exited with ${status.code ?? status.signal}; stderr: ${this.stderr.trim()}`);
  }

  kill(): void {
    if (!this.done) this.proc.kill('SIGKILL');
  }
}

/** Kills (by pid) every child still running and waits for them. */
export async function killChildren(): Promise<void> {
  const left = [...live];
  for (const child of left) child.kill();
  await Promise.all(left.map((c) => c.exited));
}

/** Runs a command to completion; its exit status and output. */
export function run(command: string, args: string[]): Promise<{ status: ExitStatus; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => void (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => void (stderr += s));
    child.once('error', reject);
    child.once('close', (code, signal) => resolvePromise({ status: { code, signal }, stdout, stderr, pid: child.pid! }));
  });
}
