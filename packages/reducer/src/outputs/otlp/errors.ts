// Typed errors of the OTLP output. Configuration errors are the user's to fix (the CLI prints
// one line); export errors carry the gRPC status so delivery can tell a retry from a drop.

import { status as GrpcStatus } from '@grpc/grpc-js';

/** Bad exporter options (endpoint, timeouts) or missing protocol files. */
export class OtlpConfigError extends Error {
  override readonly name = 'OtlpConfigError';
}

/** A value OTLP cannot carry, found while converting a report. */
export class OtlpConvertError extends Error {
  override readonly name = 'OtlpConvertError';
}

/** An Export call that did not succeed. */
export class OtlpExportError extends Error {
  override readonly name = 'OtlpExportError';
  constructor(
    /** The gRPC status code (`@grpc/grpc-js` `status`). */
    readonly code: GrpcStatus,
    readonly details: string,
  ) {
    super(`OTLP export failed: ${GrpcStatus[code] ?? code}${details ? `: ${details}` : ''}`);
  }

  /** Whether sending the same data again may succeed. */
  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }
}

// The OTLP/gRPC specification's list of retryable codes, plus RESOURCE_EXHAUSTED: a collector
// sheds load with it, and holding the report (bounded) is what it asks of a sender. Resending a
// report the collector did store (a late answer, DEADLINE_EXCEEDED) is harmless: its points are
// cumulative values at the same timestamps, duplicates rather than double counts.
const RETRYABLE: ReadonlySet<GrpcStatus> = new Set([
  GrpcStatus.CANCELLED,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.RESOURCE_EXHAUSTED,
  GrpcStatus.ABORTED,
  GrpcStatus.OUT_OF_RANGE,
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.DATA_LOSS,
]);
