// The OTLP/gRPC metrics output.

export { type BackoffOptions, DEFAULT_BACKOFF, backoffDelay } from './backoff.js';
export { AGGREGATION_TEMPORALITY_CUMULATIVE, type ExportMetricsServiceRequest, SCOPE_NAME, toExportRequest, unixNanos } from './convert.js';
export { OtlpConfigError, OtlpConvertError, OtlpExportError } from './errors.js';
export { OtlpExporter, type OtlpExporterOptions, type OtlpExporterStats, type OtlpLogger } from './exporter.js';
export { type OtlpProtos, defaultProtoDir, loadOtlpProtos } from './protos.js';
export { parseEndpoint } from './transport.js';
