// A Map with a size limit. A full table refuses new keys (existing entries keep being
// updated, so what is already tracked stays exact) and counts each refusal by table name.

/** Refusals per table name, shared by every table of that name (e.g. all nodes' sockets). */
export type DropCounts = Record<string, number>;

export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(
    readonly table: string,
    readonly limit: number,
    private readonly drops: DropCounts,
  ) {
    drops[table] ??= 0;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Adds or replaces; returns false, and counts a drop, when the key is new and the table full. */
  set(key: K, value: V): boolean {
    if (this.map.size >= this.limit && !this.map.has(key)) {
      this.drops[this.table]!++;
      return false;
    }
    this.map.set(key, value);
    return true;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  values(): IterableIterator<V> {
    return this.map.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.map.entries();
  }
}
