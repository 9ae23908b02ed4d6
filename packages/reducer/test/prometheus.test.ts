// The Prometheus output: golden exposition text, promtool's lint on a live reducer, and the real
// Prometheus server scraping the reducer and answering PromQL with the expected bytes.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { flowMetrics, renderExposition } from '../src/index.js';
import type { Reducer } from '../src/index.js';
import { SyntheticCollector } from '../src/testing/index.js';
import { pastMatchWindow, startReducer, waitFor } from './support.js';

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;

const reducers: Reducer[] = [];
after(async () => {
  for (const r of reducers) await r.stop();
});

test('the exposition of counters, gauges and histograms, with escaped labels', () => {
  const labels = { aggregation: 'node', source_node: 'a"b\\c\nd', dest_node: '', dest_x: 'y' };
  const text = renderExposition({
    startMs: 0,
    intervalStartMs: 0,
    endMs: 1000,
    points: [
      { metric: flowMetrics.tcpBytes, labels, value: 1500, delta: 500 },
      { metric: flowMetrics.tcpActive, labels: {}, value: 2, delta: 2 },
      {
        metric: flowMetrics.tcpRtt,
        labels: { aggregation: 'node' },
        value: 3,
        delta: 1,
        histogram: { bounds: [0.001, 0.01], bucketCounts: [1, 2, 0], sum: 0.0125, count: 3 },
      },
    ],
  });
  assert.equal(
    text,
    [
      `# HELP tcp_bytes_total ${flowMetrics.tcpBytes.help}`,
      '# TYPE tcp_bytes_total counter',
      'tcp_bytes_total{aggregation="node",source_node="a\\"b\\\\c\\nd",dest_x="y"} 1500',
      `# HELP tcp_active ${flowMetrics.tcpActive.help}`,
      '# TYPE tcp_active gauge',
      'tcp_active 2',
      `# HELP tcp_rtt_seconds ${flowMetrics.tcpRtt.help}`,
      '# TYPE tcp_rtt_seconds histogram',
      'tcp_rtt_seconds_bucket{aggregation="node",le="0.001"} 1',
      'tcp_rtt_seconds_bucket{aggregation="node",le="0.01"} 3',
      'tcp_rtt_seconds_bucket{aggregation="node",le="+Inf"} 3',
      'tcp_rtt_seconds_sum{aggregation="node"} 0.0125',
      'tcp_rtt_seconds_count{aggregation="node"} 3',
      '',
    ].join('\n'),
  );
});

/** A reducer fed with one matched flow (with RTT, so the histogram is there), UDP and a reset. */
async function busyReducer(intervalMs = 3_600_000): Promise<{ reducer: Reducer; a: SyntheticCollector; b: SyntheticCollector }> {
  const reducer = await startReducer({ intervalMs, levels: ['node', 'process', 'container'] });
  reducers.push(reducer);
  const a = new SyntheticCollector({ port: reducer.intakePort, nodeId: 'node-a' });
  const b = new SyntheticCollector({ port: reducer.intakePort, nodeId: 'node-b' });
  await a.connect();
  await b.connect();
  a.openTcp({ socketId: 1, pid: 100, local: '10.0.0.1', localPort: 40000, remote: '10.0.0.2', remotePort: 80, role: 'client' }, 'curl');
  b.openTcp({ socketId: 7, pid: 200, local: '10.0.0.2', localPort: 80, remote: '10.0.0.1', remotePort: 40000, role: 'server' }, 'nginx');
  a.stats(1, 1000, 5000, 250);
  b.stats(7, 5000, 1000, 260);
  a.send('socketOpen', { socketId: 2, pid: 100, protocol: 17, family: 2, flags: 0 });
  a.send('socketAddress', { socketId: 2, localAddr: '10.0.0.1', remoteAddr: '0.0.0.0', localPort: 5353, remotePort: 0, role: 0 });
  a.send('udpStats', { socketId: 2, remoteAddr: '10.0.0.53', remotePort: 53, bytesSent: 40, bytesReceived: 90, packetsSent: 1, packetsReceived: 1 });
  a.send('lostEvents', { cause: 1, count: 3 });
  await a.flush();
  await b.flush();
  await waitFor('messages', () => reducer.intake.stats.messages >= 2 + 4 + 4 + 4);
  return { reducer, a, b };
}

test('promtool check metrics passes on the live /metrics', { skip: !hasPromtool && 'promtool is not installed (Debian package prometheus)' }, async () => {
  const { reducer, a, b } = await busyReducer();
  reducer.tick(pastMatchWindow());
  const body = await (await fetch(`http://127.0.0.1:${reducer.httpPort}/metrics`)).text();
  assert.match(body, /tcp_bytes_total\{aggregation="process",source_node="node-a",source_process="curl",dest_node="node-b",dest_process="nginx"\} 1000/);
  assert.match(body, /tcp_rtt_seconds_bucket/);
  assert.match(body, /udp_bytes_total/);
  assert.match(body, /ebpf_net_collector_lost_events_total\{node="node-a",cause="ring_buffer_full"\} 3/);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  assert.equal((check.stdout + check.stderr).trim(), '', 'no lint findings');
  await a.close();
  await b.close();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test('the real Prometheus scrapes the reducer, and PromQL returns the expected bytes', { skip: !hasPrometheus && 'prometheus is not installed (Debian package prometheus)', timeout: 60_000 }, async () => {
  const { reducer, a, b } = await busyReducer(200);
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-net-prom-'));
  const webPort = await freePort();
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: reducer\n    static_configs:\n      - targets: ['127.0.0.1:${reducer.httpPort}']\n`,
  );
  let prometheus: ChildProcess | undefined;
  try {
    prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${webPort}`], { stdio: 'ignore' });
    const query = async (promql: string): Promise<string | undefined> => {
      try {
        const res = await fetch(`http://127.0.0.1:${webPort}/api/v1/query?query=${encodeURIComponent(promql)}`);
        const json = (await res.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
        return json.data?.result?.[0]?.value[1];
      } catch {
        return undefined; // not up yet
      }
    };
    const promql = 'sum(tcp_bytes_total{aggregation="node",source_node="node-a",dest_node="node-b"})';
    const reverse = 'sum(tcp_bytes_total{aggregation="node",source_node="node-b",dest_node="node-a"})';
    let value: string | undefined;
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline && (value = await query(promql)) !== '1000') await new Promise((r) => setTimeout(r, 500));
    assert.equal(value, '1000');
    assert.equal(await query(reverse), '5000');
    assert.equal(await query('sum(tcp_active{aggregation="node",source_node="node-a",dest_node="node-b"})'), '1');
    // More traffic: the counter keeps rising in Prometheus.
    a.stats(1, 500, 0);
    await a.flush();
    while (Date.now() < deadline && (value = await query(promql)) !== '1500') await new Promise((r) => setTimeout(r, 500));
    assert.equal(value, '1500');
  } finally {
    prometheus?.kill('SIGTERM');
    if (prometheus && prometheus.exitCode === null) await new Promise((r) => prometheus!.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
    await a.close();
    await b.close();
  }
});

