// The JSON API on a real HTTP server over a real store: the same answers as the queries, and a
// 400 that names the parameter for every bad one.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { flowMetrics } from '../src/aggregation/metrics.js';
import type { IntervalReport, Labels } from '../src/outputs/report.js';
import { SqliteStore, createApiHandler, listSeries, seriesSamples, topFlows } from '../src/outputs/sqlite/index.js';

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const MINUTE = 60_000;

const CURL_NGINX: Labels = { aggregation: 'process', source_node: 'a', source_process: 'curl', dest_node: 'b', dest_process: 'nginx' };
const NGINX_CURL: Labels = { aggregation: 'process', source_node: 'b', source_process: 'nginx', dest_node: 'a', dest_process: 'curl' };
const A_B: Labels = { aggregation: 'node', source_node: 'a', dest_node: 'b' };

/** One interval a minute for the last 30 minutes; the byte counts grow with the minute. */
function reports(): IntervalReport[] {
  return Array.from({ length: 30 }, (_, i) => {
    const endMs = NOW - (29 - i) * MINUTE;
    const bytes = (i + 1) * 1000;
    return {
      startMs: NOW - 3_600_000,
      intervalStartMs: endMs - MINUTE,
      endMs,
      points: [
        { metric: flowMetrics.tcpBytes, labels: CURL_NGINX, delta: bytes, value: bytes },
        { metric: flowMetrics.tcpBytes, labels: NGINX_CURL, delta: 2 * bytes, value: 2 * bytes },
        { metric: flowMetrics.tcpBytes, labels: A_B, delta: bytes, value: bytes },
        { metric: flowMetrics.tcpSegments, labels: CURL_NGINX, delta: 3, value: 3 },
      ],
    };
  });
}

describe('JSON API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-net-sqlite-api-'));
  const store = new SqliteStore(join(dir, 'api.db'), { retentionMs: Infinity });
  const handle = createApiHandler(store, { now: () => NOW });
  let server: Server;
  let base: string;

  before(async () => {
    for (const r of reports()) store.write(r);
    server = createServer((req, res) => {
      if (!handle(req, res)) res.writeHead(404).end('not an API path');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(base + path, init);
    const type = res.headers.get('content-type');
    const body = (type?.startsWith('application/json') ? await res.json() : { text: await res.text() }) as Record<string, unknown>;
    return { status: res.status, type, body };
  };

  test('/api/flows answers what topFlows does', async () => {
    const { status, type, body } = await get('/api/flows?since=10m&metric=tcp_bytes&limit=20&aggregation=process');
    assert.equal(status, 200);
    assert.equal(type, 'application/json; charset=utf-8');
    const flows = topFlows(store.db, { sinceMs: NOW - 10 * MINUTE, metric: 'tcp_bytes', limit: 20, aggregation: 'process' });
    assert.equal(flows.length, 2);
    // The last ten minutes are minutes 21 to 30: 1000 × (21 + ... + 30) bytes from curl.
    assert.equal(flows[1]?.total, 255_000);
    assert.deepEqual(body, { metric: 'tcp_bytes', unit: 'By', sinceMs: NOW - 10 * MINUTE, untilMs: null, aggregation: 'process', flows });
  });

  test('since as a duration, an ISO timestamp or epoch ms; defaults for the rest', async () => {
    const expected = topFlows(store.db, { sinceMs: NOW - 90_000 });
    for (const since of ['90s', '1.5m', new Date(NOW - 90_000).toISOString(), String(NOW - 90_000)]) {
      const { status, body } = await get(`/api/flows?since=${encodeURIComponent(since)}`);
      assert.equal(status, 200, since);
      assert.deepEqual(body.flows, expected, since);
    }
    const { body } = await get(`/api/flows?since=1d&until=${NOW - 20 * MINUTE}&limit=1`);
    assert.deepEqual(body.flows, topFlows(store.db, { sinceMs: NOW - 86_400_000, untilMs: NOW - 20 * MINUTE, limit: 1 }));
  });

  test('/api/series and its samples answer what the queries do', async () => {
    const all = await get('/api/series');
    assert.deepEqual(all.body, { series: listSeries(store.db) });
    const bytes = await get('/api/series?metric=tcp_bytes&since=2h');
    assert.deepEqual(bytes.body, { series: listSeries(store.db, { metric: 'tcp_bytes', sinceMs: NOW - 2 * 3_600_000 }) });
    const id = listSeries(store.db, { metric: 'tcp_segments' })[0]?.id as number;
    const samples = await get(`/api/series/${id}/samples?since=5m`);
    assert.deepEqual(samples.body, { series: id, samples: seriesSamples(store.db, id, { sinceMs: NOW - 5 * MINUTE }) });
    assert.equal((samples.body.samples as unknown[]).length, 5);
  });

  for (const [path, param] of [
    ['/api/flows', 'since'],
    ['/api/flows?since=yesterday', 'since'],
    ['/api/flows?since=10x', 'since'],
    ['/api/flows?since=10m&until=soon', 'until'],
    ['/api/flows?since=10m&limit=0', 'limit'],
    ['/api/flows?since=10m&limit=many', 'limit'],
    ['/api/flows?since=10m&limit=1000000', 'limit'],
    ['/api/flows?since=10m&metric=tcp.bytes', 'metric'],
    ['/api/flows?since=10m&aggregation=', 'aggregation'],
    ['/api/flows?since=10m&agregation=process', 'agregation'],
    ['/api/flows?since=10m&since=1h', 'since'],
    ['/api/series?since=-5', 'since'],
    ['/api/series/abc/samples?since=1h', 'series'],
    ['/api/series/1/samples', 'since'],
  ] as const) {
    test(`400 for ${path}`, async () => {
      const { status, body } = await get(path);
      assert.equal(status, 400);
      assert.match(String(body.error), new RegExp(`^${param}: `));
    });
  }

  test('other methods are refused, other paths are left to the server', async () => {
    const post = await get('/api/flows?since=10m', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.match(String(post.body.error), /use GET/);
    for (const path of ['/metrics', '/api', '/api/flows/x', '/api/series/1']) assert.equal((await get(path)).status, 404, path);
  });
});
