// The OTLP/gRPC output: each IntervalReport becomes one Export call, sent in order, one at a
// time. While the collector is down or pushing back, reports wait in a bounded queue and are
// retried with backoff; a report the collector refuses outright is dropped, not retried.
//
// Every value is cumulative since the reducer's start, so a dropped report loses resolution
// (one point in time), not totals: the next report delivered carries everything counted so far.

import { hostname } from 'node:os';
import { status } from '@grpc/grpc-js';
import type { IntervalReport, Labels, ReportSink } from '../report.js';
import { type BackoffOptions, DEFAULT_BACKOFF, backoffDelay } from './backoff.js';
import { toExportRequest } from './convert.js';
import { OtlpConfigError, OtlpExportError } from './errors.js';
import { type OtlpProtos, loadOtlpProtos } from './protos.js';
import { LogThrottle } from './throttle.js';
import { type ExportResult, GrpcMetricsTransport } from './transport.js';

/** The part of a pino logger the exporter uses. */
export interface OtlpLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface OtlpExporterOptions {
  /** Collector address, `host:port` (plaintext gRPC). */
  readonly endpoint: string;
  /** Sent as gRPC metadata with every export. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Deadline of one Export call. Default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Reports that may wait for delivery, besides the one being sent. Default 60. */
  readonly maxQueue?: number;
  /** Resource attributes, over the defaults service.name = ebpf-net-reducer and host.name = this host. */
  readonly resource?: Labels;
  /** Retry delays. Default 1 s doubling to 30 s. */
  readonly backoff?: Partial<BackoffOptions>;
  /** How long close() keeps trying to deliver what is queued. Default 3000 ms. */
  readonly closeTimeoutMs?: number;
  /** Shortest time between two warnings of the same kind. Default 30 000 ms. */
  readonly warnIntervalMs?: number;
  readonly logger?: OtlpLogger;
  /** Directory holding the opentelemetry/proto/... files. Default: this package's proto/. */
  readonly protoDir?: string;
}

export interface OtlpExporterStats {
  /** Reports the collector accepted. */
  readonly exported: number;
  /** Reports the collector refused with a non-retryable status, or that could not be encoded. */
  readonly failed: number;
  /** Reports dropped undelivered: the oldest when the queue overflowed, or those left at close. */
  readonly droppedReports: number;
  /** Export attempts that failed with a retryable status and were tried again later. */
  readonly retries: number;
  /** Data points the collector accepted the report of but rejected (partial success). */
  readonly rejectedDataPoints: number;
  /** Reports not delivered yet: waiting, and the one being sent. */
  readonly queued: number;
}

const silentLogger: OtlpLogger = { debug() {}, info() {}, warn() {}, error() {} };

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new OtlpConfigError(`OTLP ${name} must be a positive number, got ${value}`);
  return value;
}

export class OtlpExporter implements ReportSink {
  readonly name = 'otlp';
  private readonly protos: OtlpProtos;
  private readonly transport: GrpcMetricsTransport;
  private readonly resource: Labels;
  private readonly timeoutMs: number;
  private readonly maxQueue: number;
  private readonly backoff: BackoffOptions;
  private readonly closeTimeoutMs: number;
  private readonly logger: OtlpLogger;
  private readonly dropWarnings: LogThrottle;
  private readonly retryWarnings: LogThrottle;
  private readonly failureErrors: LogThrottle;
  private readonly partialWarnings: LogThrottle;

  /** Encoded requests waiting, oldest first. */
  private readonly queue: Buffer[] = [];
  /** The export being sent: settles once its outcome is handled. */
  private inFlight: Promise<void> | undefined;
  /** Consecutive retryable failures: the backoff step. */
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** No more writes; close() is delivering what is left. */
  private closing: Promise<void> | undefined;
  /** The channel is closed: outcomes still arriving are only counted. */
  private closed = false;
  /** When close() gives up; bounds the deadline of calls made while closing. */
  private closeDeadline = Infinity;
  private idleWaiters: Array<() => void> = [];
  private readonly counters = { exported: 0, failed: 0, droppedReports: 0, retries: 0, rejectedDataPoints: 0 };

  constructor(options: OtlpExporterOptions) {
    this.timeoutMs = positive('timeoutMs', options.timeoutMs ?? 10_000);
    this.maxQueue = options.maxQueue ?? 60;
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 1) throw new OtlpConfigError(`OTLP maxQueue must be a whole number of reports, at least 1, got ${this.maxQueue}`);
    this.backoff = {
      initialMs: positive('backoff.initialMs', options.backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs),
      maxMs: positive('backoff.maxMs', options.backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs),
    };
    this.closeTimeoutMs = positive('closeTimeoutMs', options.closeTimeoutMs ?? 3000);
    const warnIntervalMs = options.warnIntervalMs ?? 30_000;
    this.dropWarnings = new LogThrottle(warnIntervalMs);
    this.retryWarnings = new LogThrottle(warnIntervalMs);
    this.failureErrors = new LogThrottle(warnIntervalMs);
    this.partialWarnings = new LogThrottle(warnIntervalMs);
    this.logger = options.logger ?? silentLogger;
    this.resource = { 'service.name': 'ebpf-net-reducer', 'host.name': hostname(), ...options.resource };
    this.protos = loadOtlpProtos(options.protoDir);
    this.transport = new GrpcMetricsTransport(this.protos, { endpoint: options.endpoint, headers: options.headers, reconnect: this.backoff });
  }

  get stats(): OtlpExporterStats {
    return { ...this.counters, queued: this.queue.length + (this.inFlight ? 1 : 0) };
  }

  write(report: IntervalReport): void {
    if (this.closing) {
      this.counters.droppedReports++;
      const held = this.dropWarnings.take();
      if (held !== undefined) this.logger.warn({ droppedReports: this.counters.droppedReports, held }, 'OTLP exporter is closing: report dropped');
      return;
    }
    let body: Buffer;
    try {
      const { request } = this.protos;
      const bytes = request.encode(request.fromObject(toExportRequest(report, this.resource))).finish();
      body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      this.counters.failed++;
      this.logger.error({ err, failed: this.counters.failed }, 'OTLP: report could not be encoded; dropped');
      return;
    }
    this.queue.push(body);
    this.trimQueue();
    this.pump();
  }

  /** Waits until nothing is queued or in flight; false if timeoutMs passed first. */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.isIdle()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (idle: boolean): void => {
        clearTimeout(timer);
        this.idleWaiters = this.idleWaiters.filter((w) => w !== onIdle);
        resolve(idle);
      };
      const onIdle = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.idleWaiters.push(onIdle);
    });
  }

  /** Delivers what is queued for at most closeTimeoutMs, then drops the rest and closes the channel. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closeDeadline = Date.now() + this.closeTimeoutMs;
    // Try now rather than wait out a backoff that may be longer than the time left.
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.pump();
    }
    await this.flush(this.closeTimeoutMs);
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const left = this.queue.splice(0).length;
    this.counters.droppedReports += left;
    // Cancels a call still running; its outcome is counted as it arrives.
    this.transport.close();
    await this.inFlight;
    if (left > 0) this.logger.warn({ droppedReports: left }, 'OTLP exporter closed with reports undelivered');
    this.logger.info({ ...this.stats }, 'OTLP exporter closed');
  }

  /** Sends the oldest queued report unless one is in flight or a retry is pending. */
  private pump(): void {
    if (this.inFlight || this.retryTimer || this.closed) return;
    const body = this.queue.shift();
    if (!body) {
      for (const waiter of this.idleWaiters.slice()) waiter();
      return;
    }
    const deadline = new Date(Math.min(Date.now() + this.timeoutMs, this.closeDeadline));
    this.inFlight = this.transport.export(body, deadline).then(
      (result) => this.onExported(result),
      (err: unknown) => this.onFailed(body, err),
    );
  }

  private onExported(result: ExportResult): void {
    this.inFlight = undefined;
    this.counters.exported++;
    if (this.attempt > 0) this.logger.info({ retries: this.attempt, queued: this.stats.queued }, 'OTLP endpoint accepting exports again');
    this.attempt = 0;
    if (result.rejectedDataPoints > 0 || result.errorMessage) {
      this.counters.rejectedDataPoints += result.rejectedDataPoints;
      const held = this.partialWarnings.take();
      if (held !== undefined) {
        this.logger.warn({ rejectedDataPoints: result.rejectedDataPoints, message: result.errorMessage, held }, 'OTLP collector rejected part of a report');
      }
    }
    this.pump();
  }

  private onFailed(body: Buffer, err: unknown): void {
    this.inFlight = undefined;
    if (this.closed) {
      this.counters.droppedReports++;
      return;
    }
    const error = err instanceof OtlpExportError ? err : new OtlpExportError(status.UNKNOWN, String(err));
    if (!error.retryable) {
      this.counters.failed++;
      const held = this.failureErrors.take();
      if (held !== undefined) this.logger.error({ code: status[error.code], details: error.details, failed: this.counters.failed, held }, 'OTLP collector refused a report; dropped, not retried');
      this.pump();
      return;
    }
    this.counters.retries++;
    // Back at the head, so reports still leave in order; it is the oldest, so an overflow drops it first.
    this.queue.unshift(body);
    this.trimQueue();
    const delay = backoffDelay(this.attempt++, this.backoff);
    const held = this.retryWarnings.take();
    if (held !== undefined) {
      this.logger.warn({ code: status[error.code], details: error.details, queued: this.stats.queued, retryInMs: delay, held }, 'OTLP export failed; will retry');
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay);
    // A pending retry alone does not keep the process alive; close() is what waits for delivery.
    this.retryTimer.unref();
  }

  /** Drops the oldest waiting reports beyond maxQueue. */
  private trimQueue(): void {
    const over = this.queue.length - this.maxQueue;
    if (over <= 0) return;
    this.queue.splice(0, over);
    this.counters.droppedReports += over;
    const held = this.dropWarnings.take();
    if (held !== undefined) {
      this.logger.warn({ droppedReports: this.counters.droppedReports, maxQueue: this.maxQueue, held }, 'OTLP queue full: oldest report dropped (counters are cumulative: resolution is lost, not totals)');
    }
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && !this.inFlight && !this.retryTimer;
  }
}
