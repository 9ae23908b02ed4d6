// Flow series: the counters, gauges and RTT histogram of one (source, dest) pair at one level,
// kept cumulative since the reducer started. The store bounds their number: past --max-series
// a new pair is folded into its level's overflow series, and counted.

import type { HistogramValue, Labels, SeriesPoint } from '../outputs/report.js';
import { type Level, labelNames } from './levels.js';
import { RTT_BOUNDS_SECONDS, flowMetrics } from './metrics.js';

export const OVERFLOW = '__overflow__';

/** One counter: its total and this interval's increase. */
class Counter {
  total = 0;
  delta = 0;
  add(n: number): void {
    this.total += n;
    this.delta += n;
  }
}

class RttHistogram {
  readonly total = new Array<number>(RTT_BOUNDS_SECONDS.length + 1).fill(0);
  readonly interval = new Array<number>(RTT_BOUNDS_SECONDS.length + 1).fill(0);
  totalSum = 0;
  totalCount = 0;
  intervalSum = 0;
  intervalCount = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < RTT_BOUNDS_SECONDS.length && seconds > RTT_BOUNDS_SECONDS[i]!) i++;
    this.total[i]!++;
    this.interval[i]!++;
    this.totalSum += seconds;
    this.totalCount++;
    this.intervalSum += seconds;
    this.intervalCount++;
  }

  value(which: 'total' | 'interval'): HistogramValue {
    return which === 'total'
      ? { bounds: RTT_BOUNDS_SECONDS, bucketCounts: [...this.total], sum: this.totalSum, count: this.totalCount }
      : { bounds: RTT_BOUNDS_SECONDS, bucketCounts: [...this.interval], sum: this.intervalSum, count: this.intervalCount };
  }

  resetInterval(): void {
    this.interval.fill(0);
    this.intervalSum = 0;
    this.intervalCount = 0;
  }
}

export class FlowSeries {
  readonly tcpBytes = new Counter();
  readonly tcpSegments = new Counter();
  readonly tcpRetrans = new Counter();
  readonly tcpNewSockets = new Counter();
  readonly tcpResets = new Counter();
  readonly tcpSynTimeouts = new Counter();
  readonly udpBytes = new Counter();
  readonly udpPackets = new Counter();
  readonly rtt = new RttHistogram();
  /** Open connections counted this interval. */
  active = 0;
  hasTcp = false;
  hasUdp = false;
  /** Intervals in which nothing fed this series. */
  idleIntervals = 0;
  touched = false;
  evicted = false;

  constructor(
    readonly key: string,
    readonly labels: Labels,
  ) {}

  /** Appends this interval's points and starts the next interval. */
  flush(out: SeriesPoint[]): void {
    const push = (metric: (typeof flowMetrics)[keyof typeof flowMetrics], c: Counter) =>
      out.push({ metric, labels: this.labels, value: c.total, delta: c.delta });
    if (this.hasTcp) {
      push(flowMetrics.tcpBytes, this.tcpBytes);
      push(flowMetrics.tcpSegments, this.tcpSegments);
      push(flowMetrics.tcpRetrans, this.tcpRetrans);
      push(flowMetrics.tcpNewSockets, this.tcpNewSockets);
      push(flowMetrics.tcpResets, this.tcpResets);
      push(flowMetrics.tcpSynTimeouts, this.tcpSynTimeouts);
      out.push({ metric: flowMetrics.tcpActive, labels: this.labels, value: this.active, delta: this.active });
      if (this.rtt.totalCount > 0) {
        out.push({
          metric: flowMetrics.tcpRtt,
          labels: this.labels,
          value: this.rtt.totalCount,
          delta: this.rtt.intervalCount,
          histogram: this.rtt.value('total'),
          histogramDelta: this.rtt.value('interval'),
        });
      }
      if (this.rtt.intervalCount > 0) {
        const average = this.rtt.intervalSum / this.rtt.intervalCount;
        out.push({ metric: flowMetrics.tcpRttAverage, labels: this.labels, value: average, delta: average });
      }
    }
    if (this.hasUdp) {
      push(flowMetrics.udpBytes, this.udpBytes);
      push(flowMetrics.udpPackets, this.udpPackets);
    }
    for (const c of [this.tcpBytes, this.tcpSegments, this.tcpRetrans, this.tcpNewSockets, this.tcpResets, this.tcpSynTimeouts, this.udpBytes, this.udpPackets]) c.delta = 0;
    this.rtt.resetInterval();
    this.idleIntervals = this.touched ? 0 : this.idleIntervals + 1;
    this.touched = false;
    this.active = 0;
  }
}

export class SeriesStore {
  private readonly series = new Map<string, FlowSeries>();
  private readonly overflow = new Map<Level, FlowSeries>();
  /** Pairs folded into an overflow series because the store was full. */
  overflowed = 0;

  constructor(
    private readonly maxSeries: number,
    private readonly idleIntervalsToExpire: number,
    private readonly onFirstOverflow: (level: Level) => void,
  ) {}

  get size(): number {
    return this.series.size;
  }

  /** The series for a (level, source, dest) pair, created on first use. */
  get(level: Level, source: readonly string[], dest: readonly string[]): FlowSeries {
    const key = `${level}\u0000${source.join('\u0000')}\u0000\u0001${dest.join('\u0000')}`;
    let s = this.series.get(key);
    if (s) return s;
    if (this.series.size >= this.maxSeries) return this.overflowSeries(level);
    const labels: Record<string, string> = { aggregation: level };
    const names = labelNames(level);
    names.forEach((name, i) => (labels[`source_${name}`] = source[i]!));
    names.forEach((name, i) => (labels[`dest_${name}`] = dest[i]!));
    s = new FlowSeries(key, labels);
    this.series.set(key, s);
    return s;
  }

  private overflowSeries(level: Level): FlowSeries {
    this.overflowed++;
    let s = this.overflow.get(level);
    if (!s) {
      const labels: Record<string, string> = { aggregation: level };
      for (const name of labelNames(level)) labels[`source_${name}`] = OVERFLOW;
      for (const name of labelNames(level)) labels[`dest_${name}`] = OVERFLOW;
      s = new FlowSeries(`${level}\u0000${OVERFLOW}`, labels);
      this.overflow.set(level, s);
      this.onFirstOverflow(level);
    }
    return s;
  }

  /** Appends every series' points, then forgets series idle for too long. */
  flush(out: SeriesPoint[]): void {
    for (const [key, s] of this.series) {
      s.flush(out);
      if (s.idleIntervals >= this.idleIntervalsToExpire) {
        s.evicted = true;
        this.series.delete(key);
      }
    }
    for (const s of this.overflow.values()) s.flush(out);
  }
}
