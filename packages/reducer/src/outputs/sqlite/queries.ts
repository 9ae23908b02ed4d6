// Read queries over a store's database, shared by the HTTP API and the query CLI. Every value
// from a caller is a bound parameter. Windows are half-open on interval ends: a sample counts
// when its interval ended after sinceMs and at or before untilMs.

import type Database from 'better-sqlite3';
import type { MetricKind } from '../report.js';
import { ParamError } from './errors.js';
import { flowEnds } from './labels.js';

export const DEFAULT_FLOW_METRIC = 'tcp_bytes';
export const DEFAULT_FLOW_LIMIT = 20;
export const DEFAULT_SERIES_LIMIT = 1000;
/** The largest `limit` a query accepts: bounds the memory of one answer. */
export const MAX_LIMIT = 100_000;

export interface TopFlowsOptions {
  sinceMs: number;
  /** Default: no upper bound. */
  untilMs?: number;
  /** Base metric name (no _total); default tcp_bytes. */
  metric?: string;
  /** Only series with this `aggregation` label (node, process, container, ...). */
  aggregation?: string;
  /** Default 20. */
  limit?: number;
}

export interface FlowRow {
  /** The source_* labels, prefix removed. */
  source: Record<string, string>;
  /** The dest_* labels, prefix removed. */
  dest: Record<string, string>;
  /** Sum of the series' deltas over the window. */
  total: number;
}

/** The flows with the largest totals of `metric` in the window, largest first. */
export function topFlows(db: Database.Database, options: TopFlowsOptions): FlowRow[] {
  const rows = db
    .prepare(
      // Walk the window's intervals and seek each one's (ts, metric) range: reads only this
      // metric's samples. Totals per series first; labels are joined for the groups only.
      `WITH totals AS (
         SELECT s.series_id, TOTAL(s.delta) AS total
         FROM intervals i CROSS JOIN samples s
         WHERE i.end_ms > @since AND i.end_ms <= @until
           AND s.ts = i.end_ms AND s.metric_id = (SELECT id FROM metrics WHERE name = @metric)
         GROUP BY s.series_id
       )
       SELECT se.labels, t.total
       FROM totals t JOIN series se ON se.id = t.series_id
       WHERE se.flow = 1 AND (@aggregation IS NULL OR se.aggregation = @aggregation)
       ORDER BY t.total DESC, se.labels
       LIMIT @limit`,
    )
    .all({
      since: checkTime('sinceMs', options.sinceMs),
      until: options.untilMs === undefined ? Number.MAX_SAFE_INTEGER : checkTime('untilMs', options.untilMs),
      metric: options.metric ?? DEFAULT_FLOW_METRIC,
      aggregation: options.aggregation ?? null,
      limit: checkLimit(options.limit ?? DEFAULT_FLOW_LIMIT),
    }) as { labels: string; total: number }[];
  return rows.map((row) => ({ ...flowEnds(JSON.parse(row.labels) as Record<string, string>), total: row.total }));
}

export interface ListSeriesOptions {
  metric?: string;
  /** Only series with a sample whose interval ended after this. */
  sinceMs?: number;
  /** Default 1000. */
  limit?: number;
}

export interface SeriesRow {
  id: number;
  metric: string;
  kind: MetricKind;
  unit: string;
  labels: Record<string, string>;
  /** Histograms: bucket upper bounds; an implicit +Inf bucket follows. */
  bounds?: number[];
  /** End of the last interval with a sample. */
  lastMs: number | null;
}

/** Series, by metric then labels. */
export function listSeries(db: Database.Database, options: ListSeriesOptions = {}): SeriesRow[] {
  const rows = db
    .prepare(
      `SELECT id, metric, kind, unit, labels, bounds, last_ms AS lastMs
       FROM series_info
       WHERE (@metric IS NULL OR metric = @metric) AND (@since IS NULL OR last_ms > @since)
       ORDER BY metric, labels
       LIMIT @limit`,
    )
    .all({
      metric: options.metric ?? null,
      since: options.sinceMs === undefined ? null : checkTime('sinceMs', options.sinceMs),
      limit: checkLimit(options.limit ?? DEFAULT_SERIES_LIMIT),
    }) as { id: number; metric: string; kind: MetricKind; unit: string; labels: string; bounds: string | null; lastMs: number | null }[];
  return rows.map(({ labels, bounds, ...row }) => ({
    ...row,
    labels: JSON.parse(labels) as Record<string, string>,
    ...(bounds === null ? {} : { bounds: JSON.parse(bounds) as number[] }),
  }));
}

export interface SeriesSamplesOptions {
  sinceMs: number;
  untilMs?: number;
}

export interface SampleRow {
  /** Interval end, ms since the epoch. */
  ts: number;
  /** Counter: increase in the interval; gauge: value; histogram: observations in the interval. */
  delta: number | null;
  /** Counter: cumulative; gauge: value; histogram: cumulative observation count. */
  value: number | null;
  /** Histograms: sum of the interval's observations. */
  sum?: number;
  /** Histograms: the interval's count per bucket (see SeriesRow.bounds). */
  buckets?: number[];
}

/** One series' samples in the window, oldest first; empty for an unknown id. */
export function seriesSamples(db: Database.Database, seriesId: number, options: SeriesSamplesOptions): SampleRow[] {
  if (!Number.isSafeInteger(seriesId)) throw new ParamError('series', `expected an integer id, got ${seriesId}`);
  const rows = db
    .prepare(
      `SELECT s.ts, s.delta, s.value, s.sum, s.buckets
       FROM intervals i CROSS JOIN samples s
       WHERE i.end_ms > @since AND i.end_ms <= @until
         AND s.ts = i.end_ms AND s.metric_id = (SELECT metric_id FROM series WHERE id = @id) AND s.series_id = @id
       ORDER BY i.end_ms`,
    )
    .all({
      id: seriesId,
      since: checkTime('sinceMs', options.sinceMs),
      until: options.untilMs === undefined ? Number.MAX_SAFE_INTEGER : checkTime('untilMs', options.untilMs),
    }) as { ts: number; delta: number | null; value: number | null; sum: number | null; buckets: string | null }[];
  return rows.map(({ sum, buckets, ...row }) => ({
    ...row,
    ...(sum === null ? {} : { sum }),
    ...(buckets === null ? {} : { buckets: JSON.parse(buckets) as number[] }),
  }));
}

/** The unit a metric was stored with, or undefined when the store has never seen it. */
export function metricUnit(db: Database.Database, metric: string): string | undefined {
  const row = db.prepare('SELECT unit FROM metrics WHERE name = ?').get(metric) as { unit: string } | undefined;
  return row?.unit;
}

function checkTime(param: string, ms: number): number {
  if (!Number.isFinite(ms)) throw new ParamError(param, `expected ms since the epoch, got ${ms}`);
  return Math.floor(ms);
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ParamError('limit', `expected an integer from 1 to ${MAX_LIMIT}, got ${limit}`);
  return limit;
}
