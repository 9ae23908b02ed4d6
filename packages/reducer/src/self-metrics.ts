// The reducer's own health as series: connections, messages, decode errors, drops, lost
// events the collectors reported, series count and overflow.

import { LossCause } from '@ebpf-net/protocol';
import type { FlowTable } from './flows/flow-table.js';
import type { IntakeStats } from './intake/stats.js';
import type { Labels, MetricDef, SeriesPoint } from './outputs/report.js';
import { selfMetrics } from './aggregation/metrics.js';
import type { SeriesStore } from './aggregation/series.js';
import type { DropCounts } from './state/bounded-map.js';
import type { NodeRegistry } from './state/registry.js';

const lossCauseNames = new Map<number, string>(Object.entries(LossCause).map(([k, v]) => [v, k.toLowerCase()]));

export class SelfMetrics {
  /** Last totals of counters, to report each interval's increase. */
  private readonly last = new Map<string, number>();

  constructor(
    private readonly intake: IntakeStats,
    private readonly drops: DropCounts,
    private readonly flows: FlowTable,
    private readonly registry: NodeRegistry,
    private readonly series: SeriesStore,
  ) {}

  collect(out: SeriesPoint[]): void {
    const gauge = (metric: MetricDef, value: number, labels: Labels = {}) => out.push({ metric, labels, value, delta: value });
    const counter = (metric: MetricDef, total: number, labels: Labels = {}) => {
      const key = `${metric.name}${JSON.stringify(labels)}`;
      const delta = total - (this.last.get(key) ?? 0);
      this.last.set(key, total);
      out.push({ metric, labels, value: total, delta });
    };
    gauge(selfMetrics.connections, this.intake.connections);
    counter(selfMetrics.messages, this.intake.messages);
    counter(selfMetrics.bytes, this.intake.bytes);
    counter(selfMetrics.unknownMessages, this.intake.unknownMessages);
    for (const [code, n] of Object.entries(this.intake.decodeErrors)) counter(selfMetrics.decodeErrors, n, { code });
    for (const [table, n] of Object.entries(this.drops)) counter(selfMetrics.dropped, n, { table });
    counter(selfMetrics.dropped, this.flows.duplicateEnds, { table: 'duplicate_socket_ends' });
    counter(selfMetrics.dropped, this.intake.heartbeatTimeouts, { table: 'heartbeat_timeouts' });
    for (const node of this.registry.nodes.values()) {
      for (const [cause, n] of node.lost) counter(selfMetrics.collectorLost, n, { node: node.hostname, cause: lossCauseNames.get(cause) ?? String(cause) });
    }
    gauge(selfMetrics.series, this.series.size);
    counter(selfMetrics.seriesOverflow, this.series.overflowed);
  }
}
