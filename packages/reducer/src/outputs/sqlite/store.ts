// The embedded default output: every interval's points into one SQLite file, kept for a
// retention period, queried by the API and the query CLI. One synchronous transaction per
// interval with prepared statements; see schema.ts for the layout.

import type Database from 'better-sqlite3';
import type { IntervalReport, Labels, MetricDef, ReportSink, SeriesPoint } from '../report.js';
import { canonicalLabels, isFlow } from './labels.js';
import { openWritable } from './open.js';
import { type CachedSeries, SeriesCache } from './series-cache.js';

export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_SERIES_CACHE_SIZE = 100_000;
/** Retention runs at open and then at most this often, before a write. */
export const PRUNE_EVERY_MS = 60_000;

export interface SqliteStoreOptions {
  /** Samples older than this are deleted, then series left without samples (default 24 h; Infinity keeps all). */
  retentionMs?: number;
  /** Series ids remembered in memory (default 100 000); a forgotten one costs a lookup. */
  seriesCacheSize?: number;
  /** The clock retention is measured against (ms since the epoch); tests move it. */
  now?: () => number;
}

export interface PruneResult {
  samples: number;
  series: number;
}

export class SqliteStore implements ReportSink {
  readonly name = 'sqlite';
  /** The open connection; queries.ts runs on it (the API shares the writer's connection). */
  readonly db: Database.Database;
  readonly retentionMs: number;
  private readonly now: () => number;
  private readonly cache: SeriesCache;
  /**
   * Canonical text per labels object (labels are read-only by contract). An aggregator that
   * keeps a series' labels object from interval to interval skips sorting and serialising for
   * known series; weak, so it holds nothing the aggregator has let go of.
   */
  private readonly labelTexts = new WeakMap<Labels, string>();
  /** Metric name → id; bounded by the metric catalogue, not by the data. */
  private readonly metricIds = new Map<string, number>();
  private lastPruneMs = -Infinity;
  private readonly stmt: ReturnType<typeof prepare>;
  private readonly writeTx: (report: IntervalReport) => void;
  private readonly pruneTx: (cutoffMs: number) => PruneResult;

  /** Opens or creates `path`; throws StoreOpenError when it cannot. */
  constructor(
    readonly path: string,
    options: SqliteStoreOptions = {},
  ) {
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    if (!(this.retentionMs > 0)) throw new RangeError(`retentionMs must be positive, got ${this.retentionMs}`);
    this.now = options.now ?? Date.now;
    this.cache = new SeriesCache(options.seriesCacheSize ?? DEFAULT_SERIES_CACHE_SIZE);
    this.db = openWritable(path);
    this.stmt = prepare(this.db);
    this.writeTx = this.db.transaction((report: IntervalReport) => this.insert(report));
    this.pruneTx = this.db.transaction((cutoffMs: number) => this.deleteBefore(cutoffMs));
    this.maybePrune();
  }

  write(report: IntervalReport): void {
    this.maybePrune();
    try {
      this.writeTx(report);
    } catch (e) {
      // The transaction rolled back: ids cached during it may name series that were never kept.
      this.cache.clear();
      this.metricIds.clear();
      throw e;
    }
  }

  /** Deletes what retention no longer keeps, now. */
  prune(): PruneResult {
    this.lastPruneMs = this.now();
    if (this.retentionMs === Infinity) return { samples: 0, series: 0 };
    return this.pruneTx(this.lastPruneMs - this.retentionMs);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private maybePrune(): void {
    if (this.now() - this.lastPruneMs >= PRUNE_EVERY_MS) this.prune();
  }

  private insert(report: IntervalReport): void {
    const { insertSample } = this.stmt;
    const ts = report.endMs;
    this.stmt.insertInterval.run(ts, report.intervalStartMs);
    for (const point of report.points) {
      const labels = this.labelsText(point.labels);
      const ids = this.cache.get(labels, point.metric.name) ?? this.resolveSeries(point, labels);
      const { kind } = point.metric;
      if (kind === 'histogram') {
        const h = point.histogramDelta;
        insertSample.run(ts, ids.metricId, ids.seriesId, h?.count ?? point.delta, point.value, h?.sum ?? null, h ? JSON.stringify(h.bucketCounts) : null);
      } else {
        // A gauge's delta is its value, so that sums over a window mean the same for both kinds.
        insertSample.run(ts, ids.metricId, ids.seriesId, kind === 'counter' ? point.delta : point.value, point.value, null, null);
      }
    }
    this.stmt.updateLast.run(ts);
  }

  private labelsText(labels: Labels): string {
    let text = this.labelTexts.get(labels);
    if (text === undefined) {
      text = canonicalLabels(labels);
      this.labelTexts.set(labels, text);
    }
    return text;
  }

  private resolveSeries(point: SeriesPoint, labels: string): CachedSeries {
    const metricId = this.metricId(point.metric);
    const bounds = point.histogram?.bounds ?? point.histogramDelta?.bounds;
    // Insert first: a series the cache does not know is most often new. The insert does nothing
    // when the series exists already (written before a restart, or dropped from the cache).
    // (RETURNING would save the SELECT but costs more than it on every new series.)
    const inserted = this.stmt.insertSeries.run(metricId, labels, isFlow(point.labels) ? 1 : 0, point.labels.aggregation ?? null, bounds ? JSON.stringify(bounds) : null);
    const seriesId = inserted.changes === 1 ? Number(inserted.lastInsertRowid) : (this.stmt.selectSeries.get(metricId, labels) as { id: number }).id;
    const ids = { seriesId, metricId };
    this.cache.set(labels, point.metric.name, ids);
    return ids;
  }

  private metricId(metric: MetricDef): number {
    const known = this.metricIds.get(metric.name);
    if (known !== undefined) return known;
    const row = this.stmt.selectMetric.get(metric.name) as { id: number } | undefined;
    const id = row?.id ?? Number(this.stmt.insertMetric.run(metric.name, metric.kind, metric.unit).lastInsertRowid);
    this.metricIds.set(metric.name, id);
    return id;
  }

  private deleteBefore(cutoffMs: number): PruneResult {
    const samples = this.stmt.deleteSamples.run(cutoffMs).changes;
    this.stmt.deleteIntervals.run(cutoffMs);
    // series_last holds each series' newest sample: below the cutoff means none is left.
    const series = this.stmt.deleteSeries.run(cutoffMs).changes;
    this.stmt.deleteSeriesLast.run(cutoffMs);
    // Cached ids of deleted series would point at nothing; they are few, so start afresh.
    if (series > 0) this.cache.clear();
    return { samples, series };
  }
}

function prepare(db: Database.Database) {
  return {
    insertInterval: db.prepare('INSERT OR REPLACE INTO intervals (end_ms, start_ms) VALUES (?, ?)'),
    insertSample: db.prepare('INSERT OR REPLACE INTO samples (ts, metric_id, series_id, delta, value, sum, buckets) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    updateLast: db.prepare(
      `INSERT INTO series_last (series_id, last_ms) SELECT series_id, ts FROM samples WHERE ts = ?
       ON CONFLICT (series_id) DO UPDATE SET last_ms = excluded.last_ms WHERE excluded.last_ms > series_last.last_ms`,
    ),
    selectMetric: db.prepare('SELECT id FROM metrics WHERE name = ?'),
    insertMetric: db.prepare('INSERT INTO metrics (name, kind, unit) VALUES (?, ?, ?)'),
    selectSeries: db.prepare('SELECT id FROM series WHERE metric_id = ? AND labels = ?'),
    insertSeries: db.prepare('INSERT INTO series (metric_id, labels, flow, aggregation, bounds) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING'),
    deleteSamples: db.prepare('DELETE FROM samples WHERE ts < ?'),
    deleteIntervals: db.prepare('DELETE FROM intervals WHERE end_ms < ?'),
    deleteSeries: db.prepare('DELETE FROM series WHERE id IN (SELECT series_id FROM series_last WHERE last_ms < ?)'),
    deleteSeriesLast: db.prepare('DELETE FROM series_last WHERE last_ms < ?'),
  };
}
