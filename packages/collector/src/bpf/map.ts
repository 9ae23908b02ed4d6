// A map of a BPF object: its shape, resizing before load, and reads after load.
//
// Reads go through bpf_map_lookup_batch: one FFI call (3 to 6 µs) moves thousands of entries
// into reusable Buffers, instead of one call per entry.

import { ENOENT, ENOSPC } from './errno.js';
import { BpfCallError, BpfConfigError } from './errors.js';
import * as lib from './libbpf.js';
import type { Ptr } from './libbpf.js';

export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PROG_ARRAY: 3,
  PERF_EVENT_ARRAY: 4,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  LPM_TRIE: 11,
  RINGBUF: 27,
} as const;

const PER_CPU = new Set<number>([MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH, 21 /* PERCPU_CGROUP_STORAGE */]);

/** Entries per batch call unless the caller says otherwise (capped at the map's size). */
export const DEFAULT_BATCH_ENTRIES = 16384;

export type ObjectState = 'opened' | 'loaded' | 'closed';

/** What a map needs to know about the object that holds it. */
export interface MapOwner {
  readonly state: ObjectState;
  readonly path: string;
}

export class BpfMap {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  /** The value size declared in C (per CPU, for per-CPU maps). */
  readonly valueSize: number;
  /** Bytes per entry in value buffers: per-CPU maps hold one 8-byte aligned slot per possible CPU. */
  readonly valueStride: number;

  constructor(
    private readonly owner: MapOwner,
    /** struct bpf_map *, owned by the object. */
    readonly pointer: Ptr,
  ) {
    this.name = lib.bpf_map__name(pointer);
    this.type = lib.bpf_map__type(pointer);
    this.keySize = lib.bpf_map__key_size(pointer);
    this.valueSize = lib.bpf_map__value_size(pointer);
    this.valueStride = PER_CPU.has(this.type) ? roundUp8(this.valueSize) * possibleCpus() : this.valueSize;
  }

  get maxEntries(): number {
    this.live('read max_entries of', 'opened', 'loaded');
    return lib.bpf_map__max_entries(this.pointer);
  }

  /** Resizes the map; only before load. Ring buffers take a power-of-2 multiple of the page size. */
  setMaxEntries(entries: number): void {
    this.live('resize', 'opened');
    if (!Number.isInteger(entries) || entries <= 0 || entries > 0xffffffff) {
      throw new BpfConfigError(`map '${this.name}': max_entries must be a positive 32-bit integer, not ${entries}`);
    }
    const ret = lib.bpf_map__set_max_entries(this.pointer, entries);
    if (ret < 0) throw new BpfCallError(`bpf_map__set_max_entries('${this.name}', ${entries})`, -ret);
  }

  /** The map's file descriptor; only after load. */
  get fd(): number {
    this.live('use', 'loaded');
    return lib.bpf_map__fd(this.pointer);
  }

  /** A reader with its own reusable buffers; keep it and call read() on every poll. */
  batchReader(options: { entries?: number } = {}): MapBatchReader {
    return new MapBatchReader(this, options.entries ?? Math.min(DEFAULT_BATCH_ENTRIES, this.maxEntries));
  }

  /** Copies the value of `key` into `value` (valueStride bytes); false when the key is absent. */
  lookup(key: Uint8Array, value: Buffer): boolean {
    this.checkKey(key);
    if (value.length < this.valueStride) throw new BpfConfigError(`map '${this.name}': value buffer needs ${this.valueStride} bytes`);
    const ret = lib.bpf_map_lookup_elem(this.fd, toBuffer(key), value);
    if (ret === -ENOENT) return false;
    if (ret < 0) throw new BpfCallError(`bpf_map_lookup_elem('${this.name}')`, -ret);
    return true;
  }

  /** BPF_ANY (0), BPF_NOEXIST (1) or BPF_EXIST (2). */
  update(key: Uint8Array, value: Uint8Array, flags = 0): void {
    this.checkKey(key);
    if (value.length < this.valueStride) throw new BpfConfigError(`map '${this.name}': value needs ${this.valueStride} bytes`);
    const ret = lib.bpf_map_update_elem(this.fd, toBuffer(key), toBuffer(value), flags);
    if (ret < 0) throw new BpfCallError(`bpf_map_update_elem('${this.name}')`, -ret);
  }

  /** False when the key was absent. */
  delete(key: Uint8Array): boolean {
    this.checkKey(key);
    const ret = lib.bpf_map_delete_elem(this.fd, toBuffer(key));
    if (ret === -ENOENT) return false;
    if (ret < 0) throw new BpfCallError(`bpf_map_delete_elem('${this.name}')`, -ret);
    return true;
  }

  /**
   * Deletes the first `count` keys of `keys` (packed, keySize bytes each) in one call. Returns how
   * many were deleted: the kernel stops at the first key that is absent.
   */
  deleteBatch(keys: Buffer, count: number): number {
    if (count === 0) return 0;
    if (keys.length < count * this.keySize) throw new BpfConfigError(`map '${this.name}': ${count} keys need ${count * this.keySize} bytes`);
    const n = Buffer.alloc(4);
    n.writeUInt32LE(count, 0);
    const ret = lib.bpf_map_delete_batch(this.fd, keys, n, 0);
    if (ret < 0 && ret !== -ENOENT) throw new BpfCallError(`bpf_map_delete_batch('${this.name}')`, -ret);
    return n.readUInt32LE(0);
  }

  /** Throws unless the owning object is in one of `states`. */
  live(action: string, ...states: ObjectState[]): void {
    if (states.includes(this.owner.state)) return;
    const when = states.length > 1 ? 'while the object is open' : states[0] === 'opened' ? 'before load' : 'after load';
    throw new BpfConfigError(`cannot ${action} map '${this.name}' of ${this.owner.path} now: only ${when} (the object is ${this.owner.state})`);
  }

  private checkKey(key: Uint8Array): void {
    if (key.length !== this.keySize) throw new BpfConfigError(`map '${this.name}': keys are ${this.keySize} bytes, got ${key.length}`);
  }
}

/** One batch: views of the reader's buffers, valid until the next batch or read(). */
export interface MapBatch {
  /** count × keySize bytes. */
  keys: Buffer;
  /** count × valueStride bytes. */
  values: Buffer;
  count: number;
  keySize: number;
  valueStride: number;
}

export interface BatchReadOptions {
  /** Delete what was read, in the same call (bpf_map_lookup_and_delete_batch; hash maps only). */
  delete?: boolean;
}

export interface BatchReaderStats {
  /** bpf(2) batch calls made. */
  calls: number;
  entries: number;
  /** Times the buffers grew because one hash bucket held more entries than they did. */
  grown: number;
}

/** Reads a whole map in batches into buffers it keeps between reads. */
export class MapBatchReader {
  readonly stats: BatchReaderStats = { calls: 0, entries: 0, grown: 0 };
  private keys!: Buffer;
  private values!: Buffer;
  private cursorIn: Buffer;
  private cursorOut: Buffer;
  private readonly count = Buffer.alloc(4);
  private entries = 0;

  constructor(
    readonly map: BpfMap,
    entries: number,
  ) {
    if (!Number.isInteger(entries) || entries <= 0) throw new BpfConfigError(`map '${map.name}': batch size must be a positive integer`);
    // The batch cursor is a u32 bucket index for hash maps and a key for arrays.
    const cursor = Math.max(8, roundUp8(map.keySize));
    this.cursorIn = Buffer.alloc(cursor);
    this.cursorOut = Buffer.alloc(cursor);
    this.allocate(entries);
  }

  /** Entries each call can return. */
  get capacity(): number {
    return this.entries;
  }

  /** Calls `onBatch` for every batch of the map, in map order; returns the number of entries read. */
  read(onBatch: (batch: MapBatch) => void, options: BatchReadOptions = {}): number {
    const map = this.map;
    const fd = map.fd;
    const first = options.delete ? lib.bpf_map_lookup_and_delete_batch_first : lib.bpf_map_lookup_batch_first;
    const next = options.delete ? lib.bpf_map_lookup_and_delete_batch : lib.bpf_map_lookup_batch;
    const op = options.delete ? 'bpf_map_lookup_and_delete_batch' : 'bpf_map_lookup_batch';
    let started = false;
    let total = 0;
    for (;;) {
      this.count.writeUInt32LE(this.entries, 0);
      const ret = started
        ? next(fd, this.cursorIn, this.cursorOut, this.keys, this.values, this.count, 0)
        : first(fd, 0, this.cursorOut, this.keys, this.values, this.count, 0);
      this.stats.calls++;
      const n = this.count.readUInt32LE(0);
      if (ret === -ENOSPC && n === 0) {
        // One hash bucket holds more entries than the buffers: grow them, ask again from the same cursor.
        if (this.entries >= map.maxEntries) throw new BpfCallError(`${op}('${map.name}')`, ENOSPC, 'bucket larger than the map');
        this.allocate(Math.min(this.entries * 2, map.maxEntries));
        this.stats.grown++;
        continue;
      }
      if (ret < 0 && ret !== -ENOENT && ret !== -ENOSPC) throw new BpfCallError(`${op}('${map.name}')`, -ret);
      if (n > 0) {
        total += n;
        onBatch({
          keys: this.keys.subarray(0, n * map.keySize),
          values: this.values.subarray(0, n * map.valueStride),
          count: n,
          keySize: map.keySize,
          valueStride: map.valueStride,
        });
      }
      // ENOENT: the end of the map (possibly with a last batch of entries).
      if (ret === -ENOENT) break;
      this.cursorOut.copy(this.cursorIn);
      started = true;
    }
    this.stats.entries += total;
    return total;
  }

  private allocate(entries: number): void {
    this.entries = entries;
    this.keys = Buffer.alloc(entries * this.map.keySize);
    this.values = Buffer.alloc(entries * this.map.valueStride);
  }
}

let cpus = 0;
function possibleCpus(): number {
  if (!cpus) {
    const n = lib.libbpf_num_possible_cpus();
    if (n <= 0) throw new BpfCallError('libbpf_num_possible_cpus', -n);
    cpus = n;
  }
  return cpus;
}

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
