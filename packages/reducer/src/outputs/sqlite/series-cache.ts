// Series ids by labels then metric, so that a steady stream of intervals costs no lookups. The
// outer key is the canonical labels text: a flow's label set is shared by all its metrics, and
// the same string instance comes back each interval (see SqliteStore), so its hash is computed
// once. Bounded: when full, the oldest label set is dropped, and costs one SELECT per series
// when it comes back. Oldest, not least recently used: every live series is written every
// interval, a cyclic pattern for which LRU does no better, and a plain lookup is cheaper.

export interface CachedSeries {
  readonly seriesId: number;
  readonly metricId: number;
}

export class SeriesCache {
  private readonly byLabels = new Map<string, Map<string, CachedSeries>>();
  private count = 0;

  constructor(readonly maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`series cache size must be a positive integer, got ${maxEntries}`);
  }

  get(labels: string, metric: string): CachedSeries | undefined {
    return this.byLabels.get(labels)?.get(metric);
  }

  set(labels: string, metric: string, value: CachedSeries): void {
    while (this.count >= this.maxEntries) this.dropOldest();
    let metrics = this.byLabels.get(labels);
    if (metrics === undefined) {
      metrics = new Map();
      this.byLabels.set(labels, metrics);
    }
    if (!metrics.has(metric)) this.count++;
    metrics.set(metric, value);
  }

  clear(): void {
    this.byLabels.clear();
    this.count = 0;
  }

  private dropOldest(): void {
    // A Map iterates in insertion order: its first entry is the oldest.
    const oldest = this.byLabels.entries().next();
    if (oldest.done) return;
    this.byLabels.delete(oldest.value[0]);
    this.count -= oldest.value[1].size;
  }
}
