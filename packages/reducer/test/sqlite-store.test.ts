// The SQLite store on real files: exact totals from top flows, retention, restart, open errors,
// and the time one 50k-point interval takes.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { RTT_BOUNDS_SECONDS, flowMetrics, selfMetrics } from '../src/aggregation/metrics.js';
import type { IntervalReport, Labels, MetricDef, SeriesPoint } from '../src/outputs/report.js';
import { SqliteStore, StoreOpenError, listSeries, openReadOnly, seriesSamples, topFlows } from '../src/outputs/sqlite/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ebpf-net-sqlite-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `store-${++files}.db`);

const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
const INTERVAL = 10_000;

const flow = (aggregation: string, source: Record<string, string>, dest: Record<string, string>): Labels => {
  const labels: Record<string, string> = { aggregation };
  for (const [key, value] of Object.entries(source)) labels[`source_${key}`] = value;
  for (const [key, value] of Object.entries(dest)) labels[`dest_${key}`] = value;
  return labels;
};
const CURL_NGINX = flow('process', { node: 'a', process: 'curl' }, { node: 'b', process: 'nginx' });
const NGINX_CURL = flow('process', { node: 'b', process: 'nginx' }, { node: 'a', process: 'curl' });
const WGET_NGINX = flow('process', { node: 'a', process: 'wget' }, { node: 'b', process: 'nginx' });
const A_B = flow('node', { node: 'a' }, { node: 'b' });

const point = (metric: MetricDef, labels: Labels, delta: number, value = delta): SeriesPoint => ({ metric, labels, delta, value: metric.kind === 'gauge' ? delta : value });
const report = (endMs: number, points: SeriesPoint[]): IntervalReport => ({ startMs: T0 - 3_600_000, intervalStartMs: endMs - INTERVAL, endMs, points });

/** Four intervals of traffic between curl, wget and nginx, at two aggregation levels. */
function sampleReports(): IntervalReport[] {
  const curl = [100, 200, 300, 400];
  const back = [1000, 0, 5000, 50];
  const wget = [10, 20, 30, 40];
  return curl.map((_, i) =>
    report(T0 + (i + 1) * INTERVAL, [
      point(flowMetrics.tcpBytes, CURL_NGINX, curl[i] as number, sum(curl.slice(0, i + 1))),
      point(flowMetrics.tcpBytes, NGINX_CURL, back[i] as number, sum(back.slice(0, i + 1))),
      point(flowMetrics.tcpBytes, WGET_NGINX, wget[i] as number, sum(wget.slice(0, i + 1))),
      point(flowMetrics.tcpBytes, A_B, (curl[i] as number) + (wget[i] as number)),
      point(flowMetrics.tcpSegments, CURL_NGINX, i + 1),
      point(flowMetrics.tcpActive, CURL_NGINX, 2),
      point(selfMetrics.bytes, {}, 4096),
    ]),
  );
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function filledStore(options = {}): SqliteStore {
  const store = new SqliteStore(freshPath(), { retentionMs: Infinity, ...options });
  for (const r of sampleReports()) store.write(r);
  return store;
}

describe('top flows', () => {
  test('sums each flow over the window, largest first', async () => {
    const store = filledStore();
    assert.deepEqual(topFlows(store.db, { sinceMs: T0 }), [
      { source: { node: 'b', process: 'nginx' }, dest: { node: 'a', process: 'curl' }, total: 6050 },
      { source: { node: 'a', process: 'curl' }, dest: { node: 'b', process: 'nginx' }, total: 1000 },
      { source: { node: 'a' }, dest: { node: 'b' }, total: 1100 },
      { source: { node: 'a', process: 'wget' }, dest: { node: 'b', process: 'nginx' }, total: 100 },
    ].sort((x, y) => y.total - x.total));
    await store.close();
  });

  test('filters by aggregation, metric and limit', async () => {
    const store = filledStore();
    assert.deepEqual(topFlows(store.db, { sinceMs: T0, aggregation: 'node' }), [{ source: { node: 'a' }, dest: { node: 'b' }, total: 1100 }]);
    assert.deepEqual(topFlows(store.db, { sinceMs: T0, metric: 'tcp_segments' }), [{ source: { node: 'a', process: 'curl' }, dest: { node: 'b', process: 'nginx' }, total: 10 }]);
    assert.deepEqual(
      topFlows(store.db, { sinceMs: T0, aggregation: 'process', limit: 2 }).map((f) => f.total),
      [6050, 1000],
    );
    // Series without a source and a dest are not flows, whatever their metric.
    assert.deepEqual(topFlows(store.db, { sinceMs: T0, metric: 'ebpf_net_reducer_received_bytes' }), []);
    assert.deepEqual(topFlows(store.db, { sinceMs: T0, metric: 'no_such_metric' }), []);
    await store.close();
  });

  test('the window takes intervals that end after since and at or before until', async () => {
    const store = filledStore();
    const curl = (sinceMs: number, untilMs?: number) =>
      topFlows(store.db, { sinceMs, ...(untilMs === undefined ? {} : { untilMs }), aggregation: 'process' }).find((f) => f.source.process === 'curl')?.total;
    assert.equal(curl(T0 + INTERVAL), 200 + 300 + 400);
    assert.equal(curl(T0 + INTERVAL - 1), 100 + 200 + 300 + 400);
    assert.equal(curl(T0, T0 + 2 * INTERVAL), 100 + 200);
    assert.equal(curl(T0 + INTERVAL, T0 + 3 * INTERVAL), 200 + 300);
    assert.equal(curl(T0 + 4 * INTERVAL), undefined);
    await store.close();
  });

  test('labels in another order are the same series', async () => {
    const store = new SqliteStore(freshPath());
    const reversed = Object.fromEntries(Object.entries(CURL_NGINX).reverse());
    store.write(report(T0 + INTERVAL, [point(flowMetrics.tcpBytes, CURL_NGINX, 5)]));
    store.write(report(T0 + 2 * INTERVAL, [point(flowMetrics.tcpBytes, reversed, 7)]));
    assert.equal(listSeries(store.db).length, 1);
    assert.deepEqual(topFlows(store.db, { sinceMs: T0 }).map((f) => f.total), [12]);
    await store.close();
  });

  test('a cache smaller than the series still writes each series once', async () => {
    const store = new SqliteStore(freshPath(), { seriesCacheSize: 3 });
    const flows = Array.from({ length: 20 }, (_, i) => flow('process', { node: 'a', process: `p${i}` }, { node: 'b', process: 'nginx' }));
    for (let k = 1; k <= 3; k++) store.write(report(T0 + k * INTERVAL, flows.map((labels, i) => point(flowMetrics.tcpBytes, labels, i))));
    assert.equal(listSeries(store.db).length, 20);
    const totals = topFlows(store.db, { sinceMs: T0, limit: 100 });
    assert.equal(totals.length, 20);
    for (const f of totals) assert.equal(f.total, 3 * Number((f.source.process as string).slice(1)));
    await store.close();
  });
});

describe('series and samples', () => {
  test('lists series with their kind, unit, labels and last sample', async () => {
    const store = filledStore();
    const bytes = listSeries(store.db, { metric: 'tcp_bytes' });
    assert.equal(bytes.length, 4);
    assert.ok(bytes.every((s) => s.kind === 'counter' && s.unit === 'By' && s.lastMs === T0 + 4 * INTERVAL));
    assert.deepEqual(bytes.map((s) => s.labels).find((l) => l.source_process === 'curl'), CURL_NGINX);
    assert.equal(listSeries(store.db).length, 7);
    assert.equal(listSeries(store.db, { limit: 2 }).length, 2);
    assert.equal(listSeries(store.db, { sinceMs: T0 + 4 * INTERVAL }).length, 0);
    await store.close();
  });

  test('counters keep delta and cumulative value, gauges their value', async () => {
    const store = filledStore();
    const [curlBytes] = listSeries(store.db, { metric: 'tcp_bytes' }).filter((s) => s.labels.source_process === 'curl');
    assert.deepEqual(seriesSamples(store.db, curlBytes!.id, { sinceMs: T0 + 2 * INTERVAL }), [
      { ts: T0 + 3 * INTERVAL, delta: 300, value: 600 },
      { ts: T0 + 4 * INTERVAL, delta: 400, value: 1000 },
    ]);
    const [active] = listSeries(store.db, { metric: 'tcp_active' });
    assert.equal(active!.kind, 'gauge');
    assert.deepEqual(seriesSamples(store.db, active!.id, { sinceMs: T0, untilMs: T0 + INTERVAL }), [{ ts: T0 + INTERVAL, delta: 2, value: 2 }]);
    assert.deepEqual(seriesSamples(store.db, 999_999, { sinceMs: T0 }), []);
    await store.close();
  });

  test('histograms keep the interval sum, count and bucket counts', async () => {
    const store = new SqliteStore(freshPath());
    const buckets = RTT_BOUNDS_SECONDS.map(() => 0).concat(0);
    buckets[4] = 2;
    buckets[15] = 1;
    const histogramDelta = { bounds: RTT_BOUNDS_SECONDS, bucketCounts: buckets, sum: 3.0015, count: 3 };
    store.write(report(T0 + INTERVAL, [{ metric: flowMetrics.tcpRtt, labels: CURL_NGINX, value: 5, delta: 3, histogram: { ...histogramDelta, count: 5, sum: 4 }, histogramDelta }]));
    const [rtt] = listSeries(store.db, { metric: 'tcp_rtt_seconds' });
    assert.equal(rtt!.kind, 'histogram');
    assert.deepEqual(rtt!.bounds, RTT_BOUNDS_SECONDS);
    assert.deepEqual(seriesSamples(store.db, rtt!.id, { sinceMs: T0 }), [{ ts: T0 + INTERVAL, delta: 3, value: 5, sum: 3.0015, buckets }]);
    await store.close();
  });
});

describe('retention', () => {
  const MINUTE = 60_000;
  // One interval a minute for ten minutes; `wget` stops after the third.
  const minuteReports = () =>
    Array.from({ length: 10 }, (_, i) =>
      report(T0 + (i + 1) * MINUTE, [point(flowMetrics.tcpBytes, CURL_NGINX, 1), ...(i < 3 ? [point(flowMetrics.tcpBytes, WGET_NGINX, 1)] : [])]),
    );
  const sampleTimes = (db: Database.Database) => (db.prepare('SELECT DISTINCT ts FROM samples ORDER BY ts').all() as { ts: number }[]).map((r) => r.ts);

  test('deletes exactly the samples older than the retention, then series left without samples', async () => {
    let now = T0;
    const store = new SqliteStore(freshPath(), { retentionMs: 5 * MINUTE, now: () => now });
    for (const r of minuteReports()) store.write(r);
    assert.equal(sampleTimes(store.db).length, 10, 'the clock stood still: nothing pruned');

    // Cutoff T0 + 5 min: the samples of minutes 1 to 4 go, 5 to 10 stay; wget's last was minute 3.
    now = T0 + 10 * MINUTE;
    assert.deepEqual(store.prune(), { samples: 4 + 3, series: 1 });
    assert.deepEqual(sampleTimes(store.db), [5, 6, 7, 8, 9, 10].map((m) => T0 + m * MINUTE));
    assert.deepEqual(listSeries(store.db).map((s) => s.labels.source_process), ['curl']);
    assert.equal((store.db.prepare('SELECT count(*) AS n FROM intervals WHERE end_ms < ?').get(T0 + 5 * MINUTE) as { n: number }).n, 0);

    // The deleted series comes back as a new series, not a dangling id.
    store.write(report(T0 + 11 * MINUTE, [point(flowMetrics.tcpBytes, WGET_NGINX, 9)]));
    assert.deepEqual(topFlows(store.db, { sinceMs: T0 + 10 * MINUTE }).map((f) => [f.source.process, f.total]), [['wget', 9]]);
    await store.close();
  });

  test('runs before a write at most once a minute, and at open', async () => {
    let now = T0 + 10 * MINUTE;
    const path = freshPath();
    const store = new SqliteStore(path, { retentionMs: 5 * MINUTE, now: () => now });
    for (const r of minuteReports()) store.write(r);
    assert.equal(sampleTimes(store.db).length, 10, 'pruned at open, before these writes, and not since');

    now += 59_000; // the cutoff is past minute 5, but the last prune was 59 s ago
    store.write(report(T0 + 11 * MINUTE, [point(flowMetrics.tcpBytes, CURL_NGINX, 1)]));
    assert.equal(sampleTimes(store.db)[0], T0 + 1 * MINUTE);
    now += 1000;
    store.write(report(T0 + 12 * MINUTE, [point(flowMetrics.tcpBytes, CURL_NGINX, 1)]));
    assert.equal(sampleTimes(store.db)[0], T0 + 6 * MINUTE);
    await store.close();

    now = T0 + 30 * MINUTE;
    const reopened = new SqliteStore(path, { retentionMs: 5 * MINUTE, now: () => now });
    assert.deepEqual(sampleTimes(reopened.db), []);
    assert.deepEqual(listSeries(reopened.db), []);
    await reopened.close();
  });
});

describe('restart', () => {
  test('reopening the file gives the same answers, and writing goes on in the same series', async () => {
    const path = freshPath();
    const store = new SqliteStore(path, { retentionMs: Infinity });
    const reports = sampleReports();
    for (const r of reports.slice(0, 3)) store.write(r);
    const answers = (db: Database.Database) => ({
      flows: topFlows(db, { sinceMs: T0 }),
      series: listSeries(db),
      samples: listSeries(db).map((s) => seriesSamples(db, s.id, { sinceMs: T0 })),
    });
    const before = answers(store.db);
    await store.close();
    assert.equal(store.db.open, false);

    const reopened = new SqliteStore(path, { retentionMs: Infinity });
    assert.deepEqual(answers(reopened.db), before);
    const readOnly = openReadOnly(path);
    assert.deepEqual(answers(readOnly), before);
    readOnly.close();

    reopened.write(reports[3] as IntervalReport);
    assert.equal(listSeries(reopened.db).length, before.series.length, 'no series written twice');
    const uninterrupted = filledStore();
    assert.deepEqual(topFlows(reopened.db, { sinceMs: T0 }), topFlows(uninterrupted.db, { sinceMs: T0 }));
    await Promise.all([reopened.close(), uninterrupted.close()]);
  });
});

describe('open errors', () => {
  const openError = (path: string, code: string, open: (path: string) => unknown = (p) => new SqliteStore(p)) =>
    assert.throws(
      () => open(path),
      (e: unknown) => {
        assert.ok(e instanceof StoreOpenError, `a StoreOpenError, not ${String(e)}`);
        assert.equal(e.code, code);
        assert.equal(e.path, path);
        assert.ok(e.message.includes(`"${path}"`), e.message);
        assert.ok(!e.message.includes('\n'), 'one line');
        return true;
      },
    );

  test('a directory that does not exist', () => openError(join(dir, 'missing', 'x.db'), 'CANNOT_OPEN'));
  test('a path that is a directory', () => openError(dir, 'CANNOT_OPEN'));
  test('a file that is not a database', () => {
    const path = join(dir, 'garbage.db');
    writeFileSync(path, 'this is not an SQLite database, just some text that is long enough to have a header\n'.repeat(4));
    openError(path, 'NOT_A_DATABASE');
  });
  test("another program's database", () => {
    const path = join(dir, 'foreign.db');
    const db = new Database(path);
    db.exec('CREATE TABLE t (x)');
    db.close();
    openError(path, 'NOT_A_STORE');
    openError(path, 'NOT_A_STORE', openReadOnly);
  });
  test('a schema from a newer reducer', async () => {
    const path = freshPath();
    await new SqliteStore(path).close();
    const db = new Database(path);
    db.exec('UPDATE schema_version SET version = version + 1');
    db.close();
    openError(path, 'NOT_A_STORE');
  });
  test('the query tools do not create files', () => openError(join(dir, 'typo.db'), 'NOT_FOUND', openReadOnly));
});

describe('write speed', () => {
  test('one interval of 50k points', async () => {
    const store = new SqliteStore(freshPath());
    const metrics = [flowMetrics.tcpBytes, flowMetrics.tcpSegments, flowMetrics.tcpActive, flowMetrics.udpBytes, flowMetrics.tcpNewSockets];
    const flowCount = 10_000;
    // Fresh label objects every interval: the slow path, whatever the aggregator keeps.
    const interval = (k: number): IntervalReport => {
      const points: SeriesPoint[] = [];
      for (let i = 0; i < flowCount; i++) {
        const labels = flow('process', { node: `n${i % 50}`, process: `p${i}` }, { node: `m${i % 37}`, process: `q${i}` });
        for (const metric of metrics) points.push(point(metric, labels, (i + k) % 1000, k * 1000));
      }
      return report(T0 + k * INTERVAL, points);
    };
    const time = (r: IntervalReport) => {
      const start = performance.now();
      store.write(r);
      return performance.now() - start;
    };
    const firstMs = time(interval(1));
    const steadyMs = [2, 3, 4, 5].map((k) => time(interval(k))).sort((a, b) => a - b);
    const medianMs = ((steadyMs[1] as number) + (steadyMs[2] as number)) / 2;
    console.log(JSON.stringify({ bench: 'sqlite-write-50k-points', newSeriesMs: Math.round(firstMs), steadyMedianMs: Math.round(medianMs), steadyMaxMs: Math.round(steadyMs[3] as number) }));
    assert.equal((store.db.prepare('SELECT count(*) AS n FROM samples').get() as { n: number }).n, 5 * flowCount * metrics.length);
    assert.ok(medianMs < 1000, `an interval of 50k points took ${medianMs} ms`);
    await store.close();
  });
});
