// @ebpf-net/reducer: the cluster service that turns collectors' sockets into flow time series.

export { Reducer, type ReducerOptions, DEFAULT_LIMITS } from './reducer.js';
export { LEVELS, type Level, parseLevels } from './aggregation/levels.js';
export { flowMetrics, selfMetrics, RTT_BOUNDS_SECONDS } from './aggregation/metrics.js';
export { renderExposition } from './outputs/prometheus/exposition.js';
export type { IntervalReport, SeriesPoint, MetricDef, ReportSink, Labels, HistogramValue } from './outputs/report.js';
export { OPTIONS, resolveConfig, type ReducerConfig } from './config.js';
export { OtlpExporter, type OtlpExporterOptions } from './outputs/otlp/index.js';
export { SqliteStore, type SqliteStoreOptions, createApiHandler, topFlows } from './outputs/sqlite/index.js';
