// Network namespaces made by a test: a unique name (ebpfnet-test-<pid>-<tag>), lo up, deleted
// in the test's finally (and, as a last resort, when the test process exits). Deleting a
// namespace also drops its iptables rules (legacy iptables tables are per namespace); processes
// still inside it (children the test started there) are killed first, by pid.

import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const live = new Set<Netns>();
let exitHookInstalled = false;

export class Netns {
  /** Inode of the namespace: what the kernel programs report as `netns`. */
  readonly inode: number;

  private constructor(readonly name: string) {
    this.inode = statSync(`/run/netns/${name}`).ino;
  }

  static create(tag: string): Netns {
    const name = `ebpfnet-test-${process.pid}-${tag}`;
    execFileSync('ip', ['netns', 'add', name], { stdio: ['ignore', 'ignore', 'pipe'] });
    let ns: Netns;
    try {
      ns = new Netns(name);
      live.add(ns);
      ns.exec('ip', ['link', 'set', 'lo', 'up']);
    } catch (error) {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      throw error;
    }
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const n of live) n.delete();
      });
    }
    return ns;
  }

  /** argv that runs `argv` inside the namespace. */
  wrap(argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.name, ...argv];
  }

  /** Runs a command inside the namespace to completion; its stdout. */
  exec(command: string, args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, command, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Pids of the processes inside the namespace. */
  pids(): number[] {
    if (!existsSync(`/run/netns/${this.name}`)) return [];
    const out = execFileSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split(/\s+/).filter(Boolean).map(Number);
  }

  /** Kills what runs inside (children of this test), deletes the namespace. Idempotent. */
  delete(): void {
    if (!live.has(this)) return;
    try {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    } finally {
      live.delete(this);
      if (existsSync(`/run/netns/${this.name}`)) execFileSync('ip', ['netns', 'del', this.name], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
  }
}

/** Names of this test process's namespaces that still exist (should be none after a test). */
export function leftoverNamespaces(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const prefix = `ebpfnet-test-${process.pid}-`;
  return out
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));
}
