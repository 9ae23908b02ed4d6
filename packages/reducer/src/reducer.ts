// The reducer: intake → state → matching → aggregation → outputs, one interval at a time.

import type { Logger } from '@ebpf-net/common';
import { Aggregator } from './aggregation/aggregator.js';
import type { Level } from './aggregation/levels.js';
import { FlowTable } from './flows/flow-table.js';
import { IntakeServer } from './intake/server.js';
import { HttpEndpoint, type RouteHandler } from './outputs/http-server.js';
import { PrometheusSink } from './outputs/prometheus/sink.js';
import type { IntervalReport, ReportSink, SeriesPoint } from './outputs/report.js';
import { SelfMetrics } from './self-metrics.js';
import type { DropCounts } from './state/bounded-map.js';
import { NodeRegistry, type RegistryLimits } from './state/registry.js';

export interface ReducerOptions {
  intakeHost: string;
  intakePort: number;
  promHost: string;
  promPort: number;
  intervalMs: number;
  levels: readonly Level[];
  maxSeries: number;
  heartbeatTimeoutMs: number;
  /** How long a disconnected collector's node is kept. */
  nodeGraceMs: number;
  /**
   * How long a new flow reported from one end only is held back for its other end: two
   * collectors report the ends of one connection with some skew, and a flow counted alone would
   * be counted again, under other labels, when the late end arrives.
   */
  matchWindowMs: number;
  maxFrameBytes: number;
  limits: RegistryLimits & { tcpFlows: number; udpFlows: number };
}

export const DEFAULT_LIMITS: ReducerOptions['limits'] = {
  nodes: 10_000,
  addresses: 1_000_000,
  socketsPerNode: 1_000_000,
  processesPerNode: 200_000,
  containersPerNode: 50_000,
  udpPeersPerSocket: 4096,
  tcpFlows: 4_000_000,
  udpFlows: 1_000_000,
};

export class Reducer {
  readonly drops: DropCounts = {};
  readonly flows: FlowTable;
  readonly registry: NodeRegistry;
  readonly aggregator: Aggregator;
  readonly intake: IntakeServer;
  readonly prometheus = new PrometheusSink();
  readonly startMs = Date.now();
  intakePort = 0;
  httpPort = 0;
  private readonly http: HttpEndpoint;
  private readonly self: SelfMetrics;
  private timer: NodeJS.Timeout | undefined;
  private intervalStartMs = this.startMs;

  constructor(
    private readonly options: ReducerOptions,
    private readonly log: Logger,
    /** Outputs besides Prometheus (SQLite, OTLP), each given every interval's report. */
    private readonly sinks: ReportSink[] = [],
    routes: RouteHandler[] = [],
  ) {
    const limits = options.limits;
    this.flows = new FlowTable(limits, this.drops);
    const idle = Math.max(1, Math.round(300_000 / options.intervalMs)); // five minutes
    this.aggregator = new Aggregator(this.flows, (addr) => this.registry.nodeOfAddress(addr), {
      levels: options.levels,
      maxSeries: options.maxSeries,
      seriesIdleIntervals: idle,
      udpIdleIntervals: idle,
    }, (level) => log.warn({ level, maxSeries: options.maxSeries }, 'series limit reached: new flow series go to the overflow series (raise --max-series, or aggregate coarser)'));
    this.registry = new NodeRegistry(this.flows, this.drops, limits, this.aggregator);
    this.intake = new IntakeServer(this.registry, {
      host: options.intakeHost,
      port: options.intakePort,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
      maxFrameBytes: options.maxFrameBytes,
    }, log);
    this.self = new SelfMetrics(this.intake.stats, this.drops, this.flows, this.registry, this.aggregator.series);
    this.http = new HttpEndpoint(options.promHost, options.promPort, this.prometheus, routes, log);
  }

  async start(): Promise<void> {
    this.httpPort = await this.http.listen();
    try {
      this.intakePort = await this.intake.listen();
    } catch (error) {
      await this.http.close();
      throw error;
    }
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
  }

  /**
   * Ends the current interval: aggregates, hands the report to every output, forgets what ended.
   * The last tick (`final`) holds nothing back for a late end.
   */
  tick(nowMs = Date.now(), final = false): IntervalReport {
    const points: SeriesPoint[] = [];
    this.aggregator.collect(points, nowMs, final ? 0 : this.options.matchWindowMs);
    for (const node of this.registry.nodes.values()) node.endInterval();
    for (const gone of this.registry.expire(nowMs, this.options.nodeGraceMs)) this.log.info({ node: gone }, 'forgot a node whose collector stayed away past the grace period');
    this.self.collect(points);
    const report: IntervalReport = { startMs: this.startMs, intervalStartMs: this.intervalStartMs, endMs: nowMs, points };
    this.intervalStartMs = nowMs;
    for (const sink of [this.prometheus, ...this.sinks]) {
      try {
        sink.write(report);
      } catch (error) {
        this.log.error({ err: error, output: sink.name }, 'an output failed to take the interval report');
      }
    }
    return report;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.intake.close();
    this.tick(Date.now(), true);
    await this.http.close();
    for (const sink of this.sinks) await sink.close();
  }
}
