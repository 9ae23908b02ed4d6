// What the aggregator hands to every output at the end of each interval: the seam between
// aggregation and the exporters (Prometheus, SQLite, OTLP). Outputs see only these types.

export type MetricKind = 'counter' | 'gauge' | 'histogram';

export interface MetricDef {
  /** Prometheus base name; counters are exposed with `_total` appended. */
  readonly name: string;
  /** OpenTelemetry name, e.g. `tcp.bytes`. */
  readonly otelName: string;
  readonly kind: MetricKind;
  /** UCUM unit, as OTLP wants it: `By`, `s`, `{connection}`, `{segment}`, ... */
  readonly unit: string;
  readonly help: string;
}

export interface HistogramValue {
  /** Upper bounds of the buckets, ascending; an implicit +Inf bucket follows. */
  readonly bounds: readonly number[];
  /** Per bucket (not cumulative), bounds.length + 1 entries. */
  readonly bucketCounts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export type Labels = Readonly<Record<string, string>>;

export interface SeriesPoint {
  readonly metric: MetricDef;
  /** Label names are Prometheus-safe ([a-zA-Z_][a-zA-Z0-9_]*); values are any text. */
  readonly labels: Labels;
  /** Counter: total since `IntervalReport.startMs` (monotonic). Gauge: the value now. Histogram: the observation count. */
  readonly value: number;
  /** Counter: the increase during this interval. Gauge: same as value. Histogram: observations this interval. */
  readonly delta: number;
  /** Histogram only: cumulative since startMs. */
  readonly histogram?: HistogramValue;
  /** Histogram only: this interval's observations. */
  readonly histogramDelta?: HistogramValue;
}

export interface IntervalReport {
  /** When the cumulative counters started (the reducer's start), ms since the epoch. */
  readonly startMs: number;
  readonly intervalStartMs: number;
  readonly endMs: number;
  readonly points: readonly SeriesPoint[];
}

/** An output. `write` must not block the event loop for long; slow work is queued, bounded. */
export interface ReportSink {
  readonly name: string;
  write(report: IntervalReport): void;
  close(): Promise<void>;
}
