// The reducer with its outputs on: SQLite across a restart, OTLP into a real gRPC server, and the
// real `reducer` binary from start to SIGTERM, queried afterwards with `reducer query`.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { DEFAULT_LIMITS, OtlpExporter, Reducer, SqliteStore, topFlows } from '../src/index.js';
import type { ReportSink } from '../src/index.js';
import { SyntheticCollector } from '../src/testing/index.js';
import { openReadOnly } from '../src/outputs/sqlite/index.js';
import { closeAllReceivers, startReceiver } from './otlp-receiver.js';
import { silentLog, waitFor } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'ebpf-net-outputs-'));
after(() => {
  closeAllReceivers();
  rmSync(dir, { recursive: true, force: true });
});

/** One client end on node-a, one server end on node-b, `up` bytes one way and `down` the other. */
async function traffic(reducer: Reducer, up: number, down: number, sessionId = 1): Promise<void> {
  const before = reducer.intake.stats.messages;
  const a = new SyntheticCollector({ port: reducer.intakePort, nodeId: 'node-a', sessionId });
  const b = new SyntheticCollector({ port: reducer.intakePort, nodeId: 'node-b', sessionId });
  await a.connect();
  await b.connect();
  a.openTcp({ socketId: 1, pid: 100, local: '10.0.0.1', localPort: 40000, remote: '10.0.0.2', remotePort: 80, role: 'client' }, 'curl');
  b.openTcp({ socketId: 7, pid: 200, local: '10.0.0.2', localPort: 80, remote: '10.0.0.1', remotePort: 40000, role: 'server' }, 'nginx');
  a.stats(1, up, down, 300);
  b.stats(7, down, up, 300);
  await a.flush();
  await b.flush();
  await waitFor('traffic applied', () => reducer.intake.stats.messages >= before + 10);
  await a.close();
  await b.close();
}

async function reducerWith(sinks: ReportSink[]): Promise<Reducer> {
  const reducer = new Reducer(
    {
      intakeHost: '127.0.0.1', intakePort: 0, promHost: '127.0.0.1', promPort: 0, intervalMs: 3_600_000,
      levels: ['node', 'process'], maxSeries: 1000, heartbeatTimeoutMs: 60_000, nodeGraceMs: 60_000, matchWindowMs: 2_000, maxFrameBytes: 1 << 20, limits: DEFAULT_LIMITS,
    },
    silentLog,
    sinks,
  );
  await reducer.start();
  return reducer;
}

test('SQLite: the same answers after a reducer restart, and new data adds to them', async () => {
  const db = join(dir, 'restart.db');
  const query = () => {
    const reader = openReadOnly(db);
    try {
      return topFlows(reader, { sinceMs: Date.now() - 600_000, aggregation: 'process' });
    } finally {
      reader.close();
    }
  };
  let reducer = await reducerWith([new SqliteStore(db, { retentionMs: 86_400_000 })]);
  await traffic(reducer, 1000, 5000);
  await reducer.stop(); // ends the interval, hands the report to the store, closes it
  const first = query();
  assert.deepEqual(first.map((f) => [f.source.process, f.dest.process, f.total]), [['nginx', 'curl', 5000], ['curl', 'nginx', 1000]]);

  reducer = await reducerWith([new SqliteStore(db, { retentionMs: 86_400_000 })]);
  assert.deepEqual(query(), first, 'identical after a restart');
  await traffic(reducer, 10, 20, 2);
  await reducer.stop();
  assert.deepEqual(query().map((f) => f.total), [5020, 1010]);
});

test('OTLP: the reducer exports its flows to a real gRPC MetricsService', async () => {
  const receiver = await startReceiver();
  const exporter = new OtlpExporter({ endpoint: `127.0.0.1:${receiver.port}`, logger: silentLog });
  const reducer = await reducerWith([exporter]);
  await traffic(reducer, 1000, 5000);
  await reducer.stop();
  await receiver.waitFor(1);
  const metrics = receiver.received.flatMap((r) => r.resourceMetrics[0]!.scopeMetrics[0]!.metrics);
  const bytes = metrics.find((m) => m.name === 'tcp.bytes')!;
  assert.equal(bytes.unit, 'By');
  assert.equal(bytes.sum?.isMonotonic, true);
  assert.equal(bytes.sum?.aggregationTemporality, 'AGGREGATION_TEMPORALITY_CUMULATIVE');
  const point = (labels: Record<string, string>) =>
    bytes.sum!.dataPoints.find((p) => Object.entries(labels).every(([k, v]) => p.attributes.some((a) => a.key === k && a.value.stringValue === v)));
  assert.equal(point({ aggregation: 'process', source_process: 'curl', dest_process: 'nginx' })?.asInt, '1000');
  assert.equal(point({ aggregation: 'process', source_process: 'nginx', dest_process: 'curl' })?.asInt, '5000');
  const rtt = metrics.find((m) => m.name === 'tcp.rtt')!;
  assert.ok(rtt.histogram!.dataPoints.length > 0);
  receiver.close();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test('the reducer binary serves, stops cleanly on SIGTERM, and `reducer query` reads what it stored', { timeout: 30_000 }, async () => {
  const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
  const db = join(dir, 'cli.db');
  const [port, prom] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [cli, '--host', '127.0.0.1', '--port', String(port), '--prom', `127.0.0.1:${prom}`, '--db', db, '--interval', '200ms', '--no-log-file', '--aggregation', 'node'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const up = await fetch(`http://127.0.0.1:${prom}/healthz`).then((r) => r.ok, () => false);
      if (up) break;
      if (Date.now() > deadline) throw new Error(`the reducer did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const c = new SyntheticCollector({ port, nodeId: 'node-a' });
    await c.connect();
    c.openTcp({ socketId: 1, pid: 1, local: '10.0.0.1', localPort: 40000, remote: '10.0.0.9', remotePort: 443, role: 'client' });
    c.stats(1, 4321, 1234);
    await c.flush();
    for (;;) {
      const text = await (await fetch(`http://127.0.0.1:${prom}/metrics`)).text();
      if (text.includes('tcp_bytes_total{aggregation="node",source_node="node-a",dest_node="10.0.0.9"} 4321')) break;
      if (Date.now() > deadline) throw new Error('the flow never reached /metrics');
      await new Promise((r) => setTimeout(r, 50));
    }
    await c.close();
  } finally {
    child.kill('SIGTERM');
  }
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 0, `exit code; stderr: ${stderr}`);
  const query = spawnSync(process.execPath, [cli, 'query', 'top-flows', '--db', db, '--since', '10m', '--json'], { encoding: 'utf8' });
  assert.equal(query.status, 0, query.stderr);
  const flows = JSON.parse(query.stdout).flows as Array<{ source: Record<string, string>; dest: Record<string, string>; total: number }>;
  assert.deepEqual(flows.map((f) => [f.source.node, f.dest.node, f.total]), [['node-a', '10.0.0.9', 4321], ['10.0.0.9', 'node-a', 1234]]);
  const table = spawnSync(process.execPath, [cli, 'query', 'top-flows', '--db', db, '--since', '10m'], { encoding: 'utf8' });
  assert.match(table.stdout, /node-a/);
});

test('the reducer binary refuses a port in use and an unopenable database with one line', async () => {
  const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
  const held = createServer();
  await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()));
  const port = (held.address() as { port: number }).port;
  try {
    const inUse = spawnSync(process.execPath, [cli, '--host', '127.0.0.1', '--port', String(port), '--prom', '127.0.0.1:0', '--no-db', '--no-log-file'], { encoding: 'utf8' });
    assert.notEqual(inUse.status, 0);
    assert.equal(inUse.stderr.trim().split('\n').length, 1);
    assert.match(inUse.stderr, /intake port \d+ is in use/);
  } finally {
    held.close();
  }
  const badDb = spawnSync(process.execPath, [cli, '--port', '0', '--prom', '127.0.0.1:0', '--db', '/proc/no/such/dir/x.db', '--no-log-file'], { encoding: 'utf8' });
  assert.notEqual(badDb.status, 0);
  assert.equal(badDb.stderr.trim().split('\n').length, 1);
  assert.match(badDb.stderr, /cannot open SQLite database/);
});
