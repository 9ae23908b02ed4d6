// The SQLite output: the store (a ReportSink), its queries, the JSON API and the query CLI.

export { type ApiHandler, type ApiOptions, createApiHandler } from './api.js';
export { ParamError, StoreOpenError, type StoreOpenErrorCode } from './errors.js';
export {
  type FlowRow,
  type ListSeriesOptions,
  type SampleRow,
  type SeriesRow,
  type SeriesSamplesOptions,
  type TopFlowsOptions,
  listSeries,
  metricUnit,
  seriesSamples,
  topFlows,
} from './queries.js';
export { runQuery } from './query-cli.js';
export { openReadOnly } from './open.js';
export { DEFAULT_RETENTION_MS, type PruneResult, SqliteStore, type SqliteStoreOptions } from './store.js';
