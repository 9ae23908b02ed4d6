// A BPF ring buffer consumed from JavaScript, with no FFI call per record.
//
// The map is mmap()ed the way libbpf's ringbuf.c does it:
//   offset 0, one page, read-write:          consumer page; u64 consumer_pos at its start
//   offset page, page + 2 × size, read-only: producer page (u64 producer_pos), then the data
//                                            area mapped twice back to back, so a record that
//                                            wraps past the end is contiguous
// and both mappings are made visible to JS as Buffers over the same memory (memory.ts,
// ffi-rs createExternalBuffer). A record is an 8-byte header, u32 len with BUSY (bit 31: reserved,
// not yet committed) and DISCARD (bit 30), then u32 page offset, then len bytes, padded to 8.
//
// Memory ordering. The kernel writes a record, then clears BUSY with an atomic xchg (a release),
// and advances producer_pos with smp_store_release; it reads consumer_pos with
// smp_load_acquire. The consumer must load producer_pos, then the header (acquire), then the
// sample, and store consumer_pos only after it is done with the sample (release). On x86-64 (TSO)
// plain loads and stores already have exactly these orders: loads are not reordered with loads,
// stores are not reordered with earlier loads or stores. The compiler side: V8 may merge or drop
// repeated plain loads of one location, so producer_pos is read with Atomics.load (always a real
// load; a plain mov on x86). The header of each record is a different location, read once. The
// consumer_pos store is plain: the handler call before it is opaque to V8, so the store cannot
// move above it. On arm64 the header load and the consumer store would need Atomics too
// (ldar / stlr).
//
// Lost records are counted where they are lost: in the BPF program, when bpf_ringbuf_reserve
// fails. This consumer only sees what was committed.

import type { Logger } from 'pino';
import { BpfConfigError } from './errors.js';
import * as lib from './libbpf.js';
import type { Ptr } from './libbpf.js';
import type { BpfMap } from './map.js';
import { MapType } from './map.js';
import { externalBuffer, mapShared, pageSize } from './memory.js';

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const LENGTH = 0x3fffffff;
const HEADER = 8;
const TWO_32 = 4294967296;
/** How many times the drain interval an idle ring waits at most (start()). */
const IDLE_BACKOFF = 8;
// Offsets and the mask are kept in int32 arithmetic: rings up to 1 GiB.
const MAX_SIZE = 1 << 30;

/**
 * Receives one record: `length` bytes at `offset` of `data` (the mapped ring, zero-copy). The bytes
 * are valid only during the call; copy what must outlive it. No allocation per record: decode in
 * place (data.readUInt32LE(offset), a DataView over data.buffer, ...).
 */
export type SampleHandler = (data: Buffer, offset: number, length: number) => void;

export interface RingBufferOptions {
  /** Period of the drain timer started by start() (default 10 ms). */
  intervalMs?: number;
  /** Errors from the handler during timer drains; default: logged at error level. */
  onError?: (error: unknown) => void;
  logger?: Logger;
}

export interface RingBufferStats {
  /** Records handed to the handler. */
  records: number;
  /** Records the BPF program reserved and then discarded (skipped here). */
  discarded: number;
  /** drain() calls. */
  drains: number;
}

export class RingBuffer {
  readonly stats: RingBufferStats = { records: 0, discarded: 0, drains: 0 };
  /** Size of the data area (the map's max_entries). */
  readonly size: number;
  /** The data area, mapped twice: 2 × size bytes. Offsets passed to the handler index into it. */
  readonly data: Buffer;
  private readonly pageSize: number;
  private readonly consumerAddress: Ptr;
  private readonly producerAddress: Ptr;
  private readonly consumer: Uint32Array;
  private readonly producer: Uint32Array;
  private readonly header: Uint32Array;
  private readonly mask: number;
  private readonly intervalMs: number;
  private readonly onError: (error: unknown) => void;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private draining = false;
  private unmapped = false;
  /** consumer_pos, as a double (exact below 2^53), and its low 32 bits at the last store. */
  private position: number;
  private offset: number;

  constructor(
    readonly map: BpfMap,
    private readonly handler: SampleHandler,
    options: RingBufferOptions = {},
  ) {
    if (map.type !== MapType.RINGBUF) throw new BpfConfigError(`map '${map.name}' is not a ring buffer (type ${map.type})`);
    const fd = map.fd;
    this.size = map.maxEntries;
    if (this.size > MAX_SIZE) throw new BpfConfigError(`ring buffer '${map.name}' of ${this.size} bytes: at most ${MAX_SIZE} supported`);
    this.mask = this.size - 1;
    this.pageSize = pageSize();
    this.intervalMs = options.intervalMs ?? 10;
    const logger = options.logger;
    this.onError = options.onError ?? ((error) => logger?.error({ err: error, map: map.name }, 'ring buffer handler failed'));

    this.consumerAddress = mapShared(`ring buffer '${map.name}'`, this.pageSize, lib.PROT_READ | lib.PROT_WRITE, fd, 0);
    try {
      this.producerAddress = mapShared(`ring buffer '${map.name}'`, this.pageSize + 2 * this.size, lib.PROT_READ, fd, this.pageSize);
    } catch (err) {
      lib.munmap(this.consumerAddress, this.pageSize);
      throw err;
    }
    const consumerPage = externalBuffer(this.consumerAddress, this.pageSize);
    const producerArea = externalBuffer(this.producerAddress, this.pageSize + 2 * this.size);
    this.consumer = new Uint32Array(consumerPage.buffer, consumerPage.byteOffset, 2);
    this.producer = new Uint32Array(producerArea.buffer, producerArea.byteOffset, 2);
    this.data = producerArea.subarray(this.pageSize);
    this.header = new Uint32Array(this.data.buffer, this.data.byteOffset, (2 * this.size) >>> 2);
    // Resume where the kernel's consumer_pos is (zero for a fresh map).
    this.position = this.consumer[0]! + this.consumer[1]! * TWO_32;
    this.offset = (this.position % this.size) | 0;
  }

  /**
   * Hands every committed record to the handler, at most `limit` of them; returns how many.
   * Stops early at a record still being written (BUSY), which keeps records in order.
   * If the handler throws, that record counts as consumed and the error propagates.
   */
  drain(limit = Infinity): number {
    // A handler that drains again would walk the same records twice.
    if (this.closed || this.draining) return 0;
    this.draining = true;
    this.stats.drains++;
    const header = this.header;
    const data = this.data;
    const handler = this.handler;
    const mask = this.mask;
    let position = this.position;
    let offset = this.offset;
    let delivered = 0;
    let discarded = 0;
    let inHandler = 0;
    try {
      let producer = this.producerPosition();
      while (position < producer && delivered < limit) {
        while (position < producer) {
          const word = header[offset >>> 2]!;
          if (word & BUSY) return delivered;
          const length = word & LENGTH;
          const step = (length + HEADER + 7) & ~7;
          if (word & DISCARD) {
            discarded++;
          } else {
            inHandler = step;
            handler(data, offset + HEADER, length);
            inHandler = 0;
            delivered++;
            // The handler closed the ring (or its object): stop before touching it again.
            if (this.closed) {
              position += step;
              offset = (offset + step) & mask;
              return delivered;
            }
          }
          position += step;
          offset = (offset + step) & mask;
          this.storeConsumer(position);
          if (delivered >= limit) return delivered;
        }
        producer = this.producerPosition();
      }
      return delivered;
    } finally {
      if (inHandler) {
        // The handler threw: skip its record so that the next drain does not meet it again.
        position += inHandler;
        offset = (offset + inHandler) & mask;
        this.storeConsumer(position);
        delivered++;
      }
      this.position = position;
      this.offset = offset;
      this.stats.records += delivered;
      this.stats.discarded += discarded;
      this.draining = false;
      if (this.closed) this.unmap();
    }
  }

  /** Bytes written by the kernel and not consumed yet (committed or not). */
  pending(): number {
    return this.closed ? 0 : this.producerPosition() - this.position;
  }

  /**
   * Drains every intervalMs (default from the options) until stop() or close(). While drains find
   * nothing, the next one waits twice as long, up to IDLE_BACKOFF × intervalMs; a drain that finds
   * records brings it back to intervalMs. An idle node then wakes the process ~12 times a second,
   * not 100 (each wake-up of Node costs ~100 us here: ~1% of a core at 10 ms). The first records
   * after a quiet spell wait at most that long, which the ring holds many times over.
   */
  start(intervalMs = this.intervalMs): void {
    if (this.closed) throw new BpfConfigError(`ring buffer '${this.map.name}' is closed`);
    this.stop();
    const longest = intervalMs * IDLE_BACKOFF;
    let delay = intervalMs;
    const tick = (): void => {
      let records = 0;
      try {
        records = this.drain();
      } catch (error) {
        this.onError(error);
      }
      // A handler that called stop() (or stop() then start(): another chain) ends this one.
      if (this.closed || this.timer !== timer) return;
      delay = records > 0 ? intervalMs : Math.min(delay * 2, longest);
      timer = setTimeout(tick, delay);
      this.timer = timer;
    };
    let timer = setTimeout(tick, delay);
    this.timer = timer;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Stops the timer and unmaps the ring. The object's close() calls this. */
  close(): void {
    if (this.closed) return;
    this.stop();
    this.closed = true;
    // Called from the handler: drain() unmaps when it returns.
    if (!this.draining) this.unmap();
  }

  private unmap(): void {
    if (this.unmapped) return;
    this.unmapped = true;
    lib.munmap(this.producerAddress, this.pageSize + 2 * this.size);
    lib.munmap(this.consumerAddress, this.pageSize);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // producer_pos is a u64 the kernel stores in one go; two u32 loads can straddle a carry into
  // the high word, so read high, low, high until the high word holds still.
  private producerPosition(): number {
    const p = this.producer;
    let high = Atomics.load(p, 1);
    for (;;) {
      const low = Atomics.load(p, 0);
      const again = Atomics.load(p, 1);
      if (again === high) return high * TWO_32 + low;
      high = again;
    }
  }

  // Low word first: in between, the kernel sees (old high, new low), a consumer_pos that is
  // behind, never ahead, so at worst it believes the ring fuller than it is for an instant.
  private storeConsumer(position: number): void {
    const c = this.consumer;
    const low = position >>> 0;
    c[0] = low;
    if (position >= TWO_32) {
      const high = Math.floor(position / TWO_32);
      if (c[1] !== high) c[1] = high;
    }
  }
}
