// IntervalReport → ExportMetricsServiceRequest, as the plain object protobufjs' fromObject takes
// (camelCase field names; 64-bit integers as decimal strings, so no nanosecond is rounded).
//
// Counters and histograms are cumulative since report.startMs, the reducer's start: a collector
// or backend that misses one export still gets the right totals from the next one.

import type { IntervalReport, Labels, MetricDef, SeriesPoint } from '../report.js';
import { OtlpConvertError } from './errors.js';

/** The instrumentation scope every metric is reported under. */
export const SCOPE_NAME = 'ebpf-net-reducer';

/** opentelemetry.proto.metrics.v1.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE */
export const AGGREGATION_TEMPORALITY_CUMULATIVE = 2;

export interface KeyValue {
  key: string;
  value: { stringValue: string };
}

export interface NumberDataPoint {
  attributes: KeyValue[];
  startTimeUnixNano?: string;
  timeUnixNano: string;
  asDouble?: number;
  asInt?: number;
}

export interface HistogramDataPoint {
  attributes: KeyValue[];
  startTimeUnixNano: string;
  timeUnixNano: string;
  count: number;
  sum: number;
  bucketCounts: number[];
  explicitBounds: number[];
}

export interface Metric {
  name: string;
  description: string;
  unit: string;
  sum?: { dataPoints: NumberDataPoint[]; aggregationTemporality: number; isMonotonic: boolean };
  gauge?: { dataPoints: NumberDataPoint[] };
  histogram?: { dataPoints: HistogramDataPoint[]; aggregationTemporality: number };
}

export interface ExportMetricsServiceRequest {
  resourceMetrics: Array<{
    resource: { attributes: KeyValue[] };
    scopeMetrics: Array<{ scope: { name: string }; metrics: Metric[] }>;
  }>;
}

/**
 * Milliseconds since the epoch as nanoseconds, exactly, in decimal: ms × 10⁶ passes 2⁵³ (about
 * 104 days after 1970), so it is done in BigInt. A fractional ms keeps its microseconds and nanoseconds.
 */
export function unixNanos(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new OtlpConvertError(`timestamp ${ms} ms is not a time OTLP can carry`);
  const whole = Math.floor(ms);
  return (BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6))).toString();
}

export function attributes(labels: Labels): KeyValue[] {
  return Object.entries(labels).map(([key, value]) => ({ key, value: { stringValue: value } }));
}

/** One ResourceMetrics, one ScopeMetrics, one Metric per metric present, in order of first appearance. */
export function toExportRequest(report: IntervalReport, resource: Labels): ExportMetricsServiceRequest {
  const start = unixNanos(report.startMs);
  const end = unixNanos(report.endMs);

  // Grouped by OTel name: OTLP wants one Metric per name within a scope.
  const groups = new Map<string, { def: MetricDef; points: SeriesPoint[] }>();
  for (const point of report.points) {
    const group = groups.get(point.metric.otelName);
    if (group) group.points.push(point);
    else groups.set(point.metric.otelName, { def: point.metric, points: [point] });
  }

  const metrics: Metric[] = [];
  for (const { def, points } of groups.values()) {
    const metric: Metric = { name: def.otelName, description: def.help, unit: def.unit };
    switch (def.kind) {
      case 'counter': {
        // Counts are integers: sent as int64 unless some value is not, then the whole metric is double.
        const asInt = points.every((p) => Number.isSafeInteger(p.value));
        metric.sum = {
          dataPoints: points.map((p) => ({
            attributes: attributes(p.labels),
            startTimeUnixNano: start,
            timeUnixNano: end,
            ...(asInt ? { asInt: p.value } : { asDouble: p.value }),
          })),
          aggregationTemporality: AGGREGATION_TEMPORALITY_CUMULATIVE,
          isMonotonic: true,
        };
        break;
      }
      case 'gauge':
        // A gauge has no start time: its value is of the moment.
        metric.gauge = { dataPoints: points.map((p) => ({ attributes: attributes(p.labels), timeUnixNano: end, asDouble: p.value })) };
        break;
      case 'histogram':
        metric.histogram = {
          dataPoints: points.flatMap((p) => {
            const h = p.histogram;
            // The aggregator sets `histogram` on every histogram point; the type cannot say so.
            if (!h) return [];
            return [{
              attributes: attributes(p.labels),
              startTimeUnixNano: start,
              timeUnixNano: end,
              count: h.count,
              sum: h.sum,
              bucketCounts: [...h.bucketCounts],
              explicitBounds: [...h.bounds],
            }];
          }),
          aggregationTemporality: AGGREGATION_TEMPORALITY_CUMULATIVE,
        };
        break;
    }
    metrics.push(metric);
  }

  return {
    resourceMetrics: [{ resource: { attributes: attributes(resource) }, scopeMetrics: [{ scope: { name: SCOPE_NAME }, metrics }] }],
  };
}
