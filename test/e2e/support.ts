// End-to-end support: "pods" and "nodes" as network namespaces joined by a veth pair (made and
// deleted by the test), endpoint programs with names of their own, and the real binaries.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
export const REDUCER = join(root, 'packages/reducer/dist/src/cli.js');
export const COLLECTOR = join(root, 'packages/collector/dist/src/cli.js');

export const isRoot = process.getuid?.() === 0;

/** Two namespaces joined by a veth pair: A has 10.200.0.1, B has 10.200.0.2 (the test's own hosts). */
export interface Pair {
  a: string;
  b: string;
  addrA: string;
  addrB: string;
  delete(): void;
}

export function createPair(tag: string): Pair {
  const a = `ebpfnet-${tag}-a-${process.pid}`;
  const b = `ebpfnet-${tag}-b-${process.pid}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
  const pair: Pair = {
    a,
    b,
    addrA: '10.200.0.1',
    addrB: '10.200.0.2',
    delete: () => {
      for (const ns of [a, b]) {
        try {
          ip('netns', 'delete', ns);
        } catch {
          // already gone
        }
      }
    },
  };
  try {
    ip('netns', 'add', a);
    ip('netns', 'add', b);
    const va = `eva${process.pid % 100000}`;
    const vb = `evb${process.pid % 100000}`;
    ip('link', 'add', va, 'netns', a, 'type', 'veth', 'peer', 'name', vb, 'netns', b);
    for (const [ns, dev, addr] of [[a, va, '10.200.0.1/24'], [b, vb, '10.200.0.2/24']] as const) {
      ip('-n', ns, 'addr', 'add', addr, 'dev', dev);
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  } catch (error) {
    pair.delete();
    throw error;
  }
  return pair;
}

/** The inode of a named network namespace (what --netns also accepts). */
export function netnsInode(name: string): number {
  return Number(execFileSync('stat', ['-L', '-c', '%i', `/run/netns/${name}`], { encoding: 'utf8' }).trim());
}

const SERVER_JS = `
const net = require('net');
const [host, port, expect, reply] = process.argv.slice(2);
const server = net.createServer((s) => {
  let got = 0;
  s.on('data', (d) => { got += d.length; if (got === Number(expect)) s.end(Buffer.alloc(Number(reply), 'r')); });
  s.on('error', () => {});
});
server.listen(Number(port), host, () => console.log('listening'));
`;

const CLIENT_JS = `
const net = require('net');
const [host, port, chunk, count, everyMs, reply] = process.argv.slice(2).map((x, i) => i === 0 ? x : Number(x));
const s = net.connect(port, host, () => {
  let sent = 0;
  const tick = () => {
    s.write(Buffer.alloc(chunk, 'c'));
    if (++sent < count) setTimeout(tick, everyMs);
  };
  tick();
});
let got = 0;
s.on('data', (d) => { got += d.length; if (got === reply) { console.log('done'); s.end(); } });
s.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

/**
 * Endpoint programs: node under the names e2e-server and e2e-client (a process's name is the
 * name it was exec'd by), so that flows show which end is which.
 */
export class Endpoints {
  readonly dir = mkdtempSync(join(tmpdir(), 'ebpf-net-e2e-'));
  private readonly children: ChildProcess[] = [];

  constructor() {
    symlinkSync(process.execPath, join(this.dir, 'e2e-server'));
    symlinkSync(process.execPath, join(this.dir, 'e2e-client'));
    writeFileSync(join(this.dir, 'server.cjs'), SERVER_JS);
    writeFileSync(join(this.dir, 'client.cjs'), CLIENT_JS);
  }

  /** A server in `netns` that answers `reply` bytes once it has received `expect`. */
  async server(netns: string, host: string, port: number, expect: number, reply: number): Promise<ChildProcess> {
    const child = this.spawnIn(netns, 'e2e-server', 'server.cjs', [host, String(port), String(expect), String(reply)]);
    await lineFrom(child, 'listening');
    return child;
  }

  /** A client in `netns` that sends `count` chunks of `chunk` bytes, `everyMs` apart, then waits for `reply` bytes. */
  client(netns: string, host: string, port: number, chunk: number, count: number, everyMs: number, reply: number): { child: ChildProcess; done: Promise<void> } {
    const child = this.spawnIn(netns, 'e2e-client', 'client.cjs', [host, String(port), String(chunk), String(count), String(everyMs), String(reply)]);
    return { child, done: lineFrom(child, 'done') };
  }

  private spawnIn(netns: string, name: string, script: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', netns, join(this.dir, name), join(this.dir, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.children.push(child);
    return child;
  }

  close(): void {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function lineFrom(child: ChildProcess, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.split('\n').includes(line)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`endpoint exited (${code}) before printing "${line}"`)));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Every daemon this test process started, so that a timeout can show what they said. */
const started: Daemon[] = [];

/** A daemon started from its binary, with its output kept in a log file of the test's. */
export class Daemon {
  readonly child: ChildProcess;
  readonly logPath: string;

  constructor(readonly name: string, script: string, args: string[], env: NodeJS.ProcessEnv, logDir: string) {
    this.logPath = join(logDir, `${name}.log`);
    const log = openSync(this.logPath, 'a');
    this.child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
    started.push(this);
  }

  /** The last lines of its log. */
  tail(lines = 25): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM, and the exit code (SIGKILL after 10 s). */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once('exit', (code) => r(code)));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}

export function startReducer(ports: { intake: number; http: number }, db: string, logDir: string, name = 'reducer'): Daemon {
  return new Daemon(name, REDUCER, ['--host', '127.0.0.1', '--port', String(ports.intake), '--prom', `127.0.0.1:${ports.http}`, '--db', db, '--interval', '500ms', '--aggregation', 'node,process', '--no-log-file', '--log-console'], {}, logDir);
}

export function startCollector(intakePort: number, logDir: string, name: string, extra: string[] = []): Daemon {
  return new Daemon(name, COLLECTOR, ['--no-log-file', '--log-console', '--interval', '250ms', ...extra], { EBPF_NET_INTAKE_HOST: '127.0.0.1', EBPF_NET_INTAKE_PORT: String(intakePort), EBPF_NET_DATA_DIR: join(logDir, `${name}-data`) }, logDir);
}

/** The samples of the metric metricValue last looked up, shown when a wait on it times out. */
let lastSamples: string[] = [];

/** The value of a sample in the reducer's /metrics whose labels include `labels` (undefined if none). */
export async function metricValue(httpPort: number, metric: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await fetch(`http://127.0.0.1:${httpPort}/metrics`).then((r) => r.text(), () => '');
  lastSamples = text.split('\n').filter((l) => l.startsWith(`${metric}{`) || l.startsWith(`${metric} `));
  for (const line of text.split('\n')) {
    if (Object.keys(labels).length === 0 && line.startsWith(`${metric} `)) return Number(line.slice(metric.length + 1));
    if (!line.startsWith(`${metric}{`)) continue;
    const close = line.lastIndexOf('}');
    const have = Object.fromEntries([...line.slice(metric.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(line.slice(close + 2));
  }
  return undefined;
}

export async function until<T>(what: string, get: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (ok(value)) return value;
    if (Date.now() > deadline) {
      const logs = started.filter((d) => d.child.exitCode === null).map((d) => `--- ${d.name} (pid ${d.child.pid}), last lines:\n${d.tail()}`);
      const samples = lastSamples.length > 0 ? `--- the reducer's samples of that metric:\n${lastSamples.join('\n')}\n` : '';
      throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(value)})\n${samples}${logs.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What a suite works in: its namespaces, endpoint programs, log directory and daemons. */
export interface Testbed {
  pair: Pair;
  endpoints: Endpoints;
  logs: string;
  daemons: Daemon[];
}

/** Makes a testbed before the suite's tests and undoes all of it after them; call inside describe(). */
export function useTestbed(tag: string): Testbed {
  const bed = { daemons: [] as Daemon[] } as Testbed;
  before(() => {
    bed.logs = mkdtempSync(join(tmpdir(), `ebpf-net-e2e-${tag}-`));
    bed.pair = createPair(tag);
    bed.endpoints = new Endpoints();
  });
  after(async () => {
    for (const d of bed.daemons) await d.stop();
    bed.endpoints?.close();
    bed.pair?.delete();
    if (bed.logs) rmSync(bed.logs, { recursive: true, force: true });
  });
  return bed;
}
