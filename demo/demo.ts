// The demo: a reducer (with its SQLite store) and a kernel-collector on this host, a little
// traffic of its own (curl fetching from a python3 web server), and a live table of the top
// flows read from the reducer's /metrics. Ctrl-C stops everything and detaches the BPF programs.
//   node demo/dist/demo.js [--duration SECONDS] [--plain]

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dataDir = join(root, '.data');
const args = process.argv.slice(2);
const durationS = args.includes('--duration') ? Number(args[args.indexOf('--duration') + 1]) : 0;
const plain = args.includes('--plain') || !process.stdout.isTTY;
/** Ids of the BPF programs a process holds, from its fds (bpftool here does not report owners). */
function programsHeldBy(pid: number): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`, { withFileTypes: false })) {
    try {
      const m = /^prog_id:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // the fd closed meanwhile
    }
  }
  return ids;
}

/** Ids of all loaded BPF programs. */
function loadedPrograms(): Set<number> {
  const list = spawnSync('bpftool', ['prog', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return new Set([...list.matchAll(/^(\d+): /gm)].map((m) => Number(m[1])));
}

const children: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function start(name: string, command: string, argv: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const log = openSync(join(dataDir, `${name}.log`), 'w');
  const child = spawn(command, argv, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  children.push(child);
  return child;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s; see ${dataDir}/*.log`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of one metric in Prometheus text, with their labels. */
function samples(text: string, metric: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    for (const m of line.slice(metric.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    out.push({ labels, value: Number(line.slice(close + 2)) });
  }
  return out;
}

const endpoint = (l: Record<string, string>, side: 'source' | 'dest') => `${l[`${side}_process`] || '?'}@${l[`${side}_node`]}`;

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(n < 10 && i > 0 ? 1 : 0)} ${units[i]}/s`;
}

interface Row {
  client: string;
  server: string;
  up: number;
  down: number;
  rttMs: number | undefined;
  active: number;
  newPerS: number;
}

let previous: { ms: number; bytes: Map<string, number>; opened: Map<string, number> } | undefined;

/** Rows per connection pair (client → server), with rates since the previous scrape. */
function table(text: string): Row[] {
  const now = Date.now();
  const key = (l: Record<string, string>) => `${endpoint(l, 'source')}\u0000${endpoint(l, 'dest')}`;
  const bytes = new Map(samples(text, 'tcp_bytes_total').filter((s) => s.labels.aggregation === 'process').map((s) => [key(s.labels), s.value]));
  const opened = new Map(samples(text, 'tcp_new_sockets_total').filter((s) => s.labels.aggregation === 'process').map((s) => [key(s.labels), s.value]));
  const active = new Map(samples(text, 'tcp_active').filter((s) => s.labels.aggregation === 'process').map((s) => [key(s.labels), s.value]));
  const rtt = new Map(samples(text, 'tcp_rtt_average_seconds').filter((s) => s.labels.aggregation === 'process').map((s) => [key(s.labels), s.value]));
  const rows: Row[] = [];
  if (previous) {
    const seconds = (now - previous.ms) / 1000;
    const rate = (m: Map<string, number>, before: Map<string, number>, k: string) => Math.max(0, ((m.get(k) ?? 0) - (before.get(k) ?? 0)) / seconds);
    // Connection counts are oriented client → server: the keys with connections name the pairs.
    for (const k of opened.keys()) {
      if ((opened.get(k) ?? 0) === 0 && (active.get(k) ?? 0) === 0) continue; // the server → client orientation
      const [client, server] = k.split('\u0000') as [string, string];
      const back = `${server}\u0000${client}`;
      rows.push({
        client,
        server,
        up: rate(bytes, previous.bytes, k),
        down: rate(bytes, previous.bytes, back),
        rttMs: rtt.has(k) ? rtt.get(k)! * 1000 : undefined,
        active: active.get(k) ?? 0,
        newPerS: rate(opened, previous.opened, k),
      });
    }
  }
  previous = { ms: now, bytes, opened };
  return rows.filter((r) => r.up + r.down + r.active + r.newPerS > 0).sort((a, b) => b.up + b.down - (a.up + a.down)).slice(0, 12);
}

function render(rows: Row[], collectors: number): string {
  const header = ['CLIENT (process@node)', 'SERVER', '→ BYTES/S', '← BYTES/S', 'RTT', 'OPEN', 'NEW/S'];
  const cells = rows.map((r) => [r.client, r.server, humanBytes(r.up), humanBytes(r.down), r.rttMs === undefined ? '-' : `${r.rttMs.toFixed(2)} ms`, String(r.active), r.newPerS.toFixed(1)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i < 2 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
  return [
    `ebpf-net demo — ${new Date().toLocaleTimeString()} — ${collectors} collector(s) connected — Ctrl-C to stop`,
    '',
    line(header),
    ...(cells.length > 0 ? cells.map(line) : ['(waiting for flows…)']),
    '',
  ].join('\n');
}

async function stopAll(): Promise<void> {
  // The collector first, so that it detaches its programs; then the rest.
  for (const child of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the demo loads BPF programs: run it as root (sudo ./scripts/demo)');
  mkdirSync(dataDir, { recursive: true });
  const [intake, http, web] = [await freePort(), await freePort(), await freePort()];
  const db = join(dataDir, 'demo.db');
  const node = process.execPath;

  const reducer = start('reducer', node, [join(root, 'packages/reducer/dist/src/cli.js'), '--host', '127.0.0.1', '--port', String(intake), '--prom', `127.0.0.1:${http}`, '--db', db, '--interval', '1s', '--aggregation', 'process,node', '--no-log-file', '--log-console']);
  await waitUntil('the reducer to start', async () => (await fetch(`http://127.0.0.1:${http}/healthz`)).ok, 20_000);
  const collector = start('collector', node, [join(root, 'packages/collector/dist/src/cli.js'), '--no-log-file', '--log-console'], { EBPF_NET_INTAKE_HOST: '127.0.0.1', EBPF_NET_INTAKE_PORT: String(intake), EBPF_NET_DATA_DIR: join(dataDir, 'collector') });
  const metrics = async () => (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
  await waitUntil('the collector to connect', async () => /ebpf_net_reducer_collectors 1\b/.test(await metrics()), 30_000);

  // Traffic: curl fetching a 256 KiB file from a python3 web server, a few times a second.
  const site = mkdtempSync(join(tmpdir(), 'ebpf-net-demo-'));
  writeFileSync(join(site, 'blob'), Buffer.alloc(256 * 1024, 'x'));
  start('web-server', 'python3', ['-m', 'http.server', String(web), '--bind', '127.0.0.1', '--directory', site]);
  start('web-client', 'bash', ['-c', `while true; do curl -s -o /dev/null http://127.0.0.1:${web}/blob; sleep 0.25; done`]);

  process.stdout.write(`reducer: intake 127.0.0.1:${intake}, /metrics and /api on 127.0.0.1:${http}, SQLite ${db}; logs in ${dataDir}\n`);
  const stopAt = durationS > 0 ? Date.now() + durationS * 1000 : Infinity;
  let stopping = false;
  const finish = async () => {
    if (stopping) return;
    stopping = true;
    const ours = collector.pid !== undefined && collector.exitCode === null ? programsHeldBy(collector.pid) : new Set<number>();
    await stopAll();
    rmSync(site, { recursive: true, force: true });
    // The kernel frees detached programs after an RCU grace period: give it a few seconds.
    let left: number[] = [];
    for (let i = 0; i < 30; i++) {
      const loaded = loadedPrograms();
      left = [...ours].filter((id) => loaded.has(id));
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    process.stdout.write(
      `\nstopped. BPF programs of the collector left attached: ${left.length === 0 ? `none (it held ${ours.size})` : `${left.length} (ids ${left.join(', ')}; see bpftool prog list)`}.\n` +
        `the flows stay in ${db}; ask it, e.g.:\n  node packages/reducer/dist/src/cli.js query top-flows --db ${db} --since 10m\n`,
    );
    process.exit(collector.exitCode ?? 0);
  };
  process.on('SIGINT', () => void finish());
  process.on('SIGTERM', () => void finish());
  reducer.once('exit', (code) => !stopping && (process.stderr.write(`the reducer exited (${code}); see ${dataDir}/reducer.log\n`), void finish()));
  collector.once('exit', (code) => !stopping && (process.stderr.write(`the collector exited (${code}); see ${dataDir}/collector.log\n`), void finish()));

  while (!stopping && Date.now() < stopAt) {
    const text = await metrics().catch(() => '');
    const collectors = Number(/^ebpf_net_reducer_collectors (\d+)/m.exec(text)?.[1] ?? 0);
    const screen = render(table(text), collectors);
    process.stdout.write(plain ? `${screen}\n` : `\x1b[2J\x1b[H${screen}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  await finish();
}

main().catch(async (error) => {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
  await stopAll();
  process.exit(1);
});
