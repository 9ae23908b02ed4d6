// The collector's kernel side: loads bpf/'s object, attaches its programs one by one, hands
// ring-buffer events to a callback, and reads the counter maps in batches.
//
// bpf/build.sh makes two objects with the same programs and maps: ebpf_net.bpf.o, whose socket
// programs are raw tracepoints (every field of a socket read with a helper call), and
// ebpf_net.typed.bpf.o, where they are BTF-typed tracepoints (tp_btf: fields are plain loads;
// the kernel must allow tracing programs). The typed one is tried first.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { type AttachResult, BpfObject, type BpfMap, type MapBatchReader, type MappedArray, type RingBuffer, TRACEFS_PATH, ensureBpfMounts, errnoName, peekForeignSocket } from '../bpf/index.js';
import { ADOPTION_PROGRAM, Control, DROP_CAUSES, PER_CALL_PROGRAMS, REFRESH_TCP_PROGRAM, REFRESH_UDP_PROGRAM, REQUIRED_PROGRAMS, TCP_TABLE_MAPS, UDP_CGROUP_PROGRAMS, UDP_REMOTE_KEY, UDP_REMOTE_STATS, tcpTableSlots } from './abi.js';
import { type KernelEvent, type SockInfo, readEvent, readU64, sockInfoReader } from './events.js';
import { formatIp } from '@ebpf-net/protocol';

/** Where `bash bpf/build.sh` puts the object, from packages/collector/dist/src/kernel/. */
export const DEFAULT_OBJECT_PATH = fileURLToPath(new URL('../../../../../bpf/.output/ebpf_net.bpf.o', import.meta.url));

/** Which build of the socket programs runs: BTF-typed tracepoints, or raw ones. */
export type HookKind = 'typed' | 'raw';

/** The typed build beside an object: ebpf_net.bpf.o -> ebpf_net.typed.bpf.o. */
export function typedObjectPath(path: string): string {
  return path.replace(/(\.bpf)?\.o$/, '.typed.bpf.o');
}

export class BpfObjectMissingError extends Error {
  override readonly name = 'BpfObjectMissingError';
  constructor(readonly path: string) {
    super(`the BPF object ${path} does not exist: build it with \`bash bpf/build.sh\` (needs clang-16, llvm-16, bpftool and libbpf-dev), or point EBPF_NET_BPF_OBJECT at it`);
  }
}

export interface KernelProbesOptions {
  logger: Logger;
  /** Each ring record, in order. A socket event is reused by the next one: copyEvent() keeps it. */
  onEvent: (event: KernelEvent) => void;
  /** The raw object; the typed one is beside it (typedObjectPath). */
  objectPath?: string;
  /**
   * 'auto' (default): the typed object when it is there and the kernel takes it, else the raw
   * one; 'typed' or 'raw': that one only.
   */
  hooks?: HookKind | 'auto';
  /** Ring buffer size in bytes, a power of two (default 8 MiB). */
  ringBytes?: number;
  /**
   * Sockets tracked at once (default 65536): the size of the UDP table; the TCP table has the
   * next power of two of slots (see tcpTableSlots).
   */
  socketEntries?: number;
  /** UDP (socket, remote) pairs tracked at once (default 65536). */
  udpRemoteEntries?: number;
  /** Trace only sockets in these network namespaces (inode numbers); all when empty. */
  netns?: readonly number[];
  /**
   * Watch UDP (default true). false: neither the UDP programs nor the per-call hooks are
   * attached, so no program runs on a send or receive; TCP keeps its counters, accepted
   * sockets keep the listener's pid, and the adoption borrows the receive hook for its moment.
   */
  udp?: boolean;
  /**
   * How often the ring buffer is drained (default 10 ms); 0: not until startDraining() (events
   * wait in the ring, e.g. while the startup scan runs) or drain().
   */
  drainIntervalMs?: number;
}

export interface UdpRemoteCounters {
  socketId: number;
  /** '' when the datagrams' remote was not known (recv without asking for the source). */
  remoteAddr: string;
  remotePort: number;
  bytesSent: number;
  bytesReceived: number;
  packetsSent: number;
  packetsReceived: number;
}

/** A connection that existed before the programs, and a descriptor of it in its owner. */
export interface HeldSocket {
  pid: number;
  fd: number;
}

/** What adopting the pre-existing TCP connections did. */
export interface AdoptionReport {
  /** Reached: the kernel has an entry for each now (a TCP_EXISTING event each, unless it had one). */
  adopted: number;
  /** Not reached, by errno name (ESRCH, EBADF: gone meanwhile; EPERM: no ptrace rights over the owner). */
  failed: Record<string, number>;
}

/** Pre-existing connections adopted between two drains of the ring (8 MiB holds ~45k records). */
const ADOPTION_DRAIN_EVERY = 4096;

export class KernelProbes {
  readonly stats = { events: 0, unknownRecords: 0 };
  private readonly ring: RingBuffer;
  private readonly tcpSnapshot: MappedArray;
  private readonly udpSocketReader: MapBatchReader;
  private readonly udpReader: MapBatchReader;
  private readonly dropsReader: MapBatchReader;
  private readonly readSockInfo = sockInfoReader();
  private readonly control: BpfMap;

  private constructor(
    private readonly object: BpfObject,
    readonly attachResults: readonly AttachResult[],
    /** The build that runs. */
    readonly hooks: HookKind,
    options: KernelProbesOptions,
  ) {
    this.ring = object.ringBuffer('events', (data, offset, length) => {
      const event = readEvent(data, offset, length);
      if (event === undefined) {
        this.stats.unknownRecords++;
        return;
      }
      this.stats.events++;
      options.onEvent(event);
    }, { logger: options.logger });
    if ((options.drainIntervalMs ?? 10) > 0) this.startDraining(options.drainIntervalMs ?? 10);
    this.tcpSnapshot = object.mappedArray('tcp_snapshot');
    this.udpSocketReader = object.map('udp_socks').batchReader();
    this.control = object.map('control');
    this.udpReader = object.map('udp_remote').batchReader();
    this.dropsReader = object.map('drops').batchReader({ entries: DROP_CAUSES });
  }

  /** Opens, configures, loads and attaches. Throws the binding's typed errors (not root, no BTF, load refused). */
  static async open(options: KernelProbesOptions): Promise<KernelProbes> {
    const path = options.objectPath ?? process.env.EBPF_NET_BPF_OBJECT ?? DEFAULT_OBJECT_PATH;
    const hooks = options.hooks ?? 'auto';
    ensureBpfMounts();
    let typedRefused: Error | undefined;
    if (hooks !== 'raw') {
      const typed = typedObjectPath(path);
      if (existsSync(typed)) {
        try {
          return await KernelProbes.openObject(typed, 'typed', options);
        } catch (error) {
          if (hooks === 'typed') throw error;
          typedRefused = error as Error;
        }
      } else if (hooks === 'typed') {
        throw new BpfObjectMissingError(typed);
      }
    }
    if (!existsSync(path)) throw new BpfObjectMissingError(path);
    // When the raw object fails too, its error is the one to report (not root, no BTF, ...).
    const probes = await KernelProbes.openObject(path, 'raw', options);
    if (typedRefused) options.logger.warn({ err: typedRefused.message }, 'BTF-typed tracepoints refused: running the raw-tracepoint programs (each socket field costs a helper call)');
    return probes;
  }

  private static async openObject(path: string, kind: HookKind, options: KernelProbesOptions): Promise<KernelProbes> {
    const object = await BpfObject.open(path, { logger: options.logger });
    try {
      if (options.ringBytes !== undefined) object.setMaxEntries('events', options.ringBytes);
      if (options.socketEntries !== undefined) {
        const slots = tcpTableSlots(options.socketEntries);
        for (const name of TCP_TABLE_MAPS) object.setMaxEntries(name, slots);
        object.setKnob('tcp_slot_mask', slots - 1);
        object.setMaxEntries('udp_socks', options.socketEntries);
      }
      if (options.udpRemoteEntries !== undefined) object.setMaxEntries('udp_remote', options.udpRemoteEntries);
      const netns = options.netns ?? [];
      if (netns.length > 0) object.setKnob('filter_netns', 1);
      // Close events wait for tcp_destroy_sock (so that resets sent at close are seen); a kernel
      // without it gets them at the transition to CLOSE instead.
      if (!existsSync(join(TRACEFS_PATH, 'events/tcp/tcp_destroy_sock'))) {
        object.setKnob('close_at_destroy', 0);
        object.setAutoload('tcp_destroy', false);
        options.logger.warn('this kernel has no tcp:tcp_destroy_sock tracepoint: TCP close events are taken at the transition to CLOSE');
      }
      const udp = options.udp ?? true;
      if (!udp) {
        object.setKnob('trace_udp', 0);
        for (const name of UDP_CGROUP_PROGRAMS) object.setAutoload(name, false);
      }
      await object.load();
      const allowed = object.map('netns_allowed');
      const one = Buffer.alloc(4);
      one.writeUInt32LE(1);
      for (const inode of netns) {
        const key = Buffer.alloc(4);
        key.writeUInt32LE(inode);
        allowed.update(key, one);
      }
      const results = await object.attach({ required: REQUIRED_PROGRAMS, skip: udp ? [] : PER_CALL_PROGRAMS });
      return new KernelProbes(object, results, kind, options);
    } catch (error) {
      object.close();
      throw error;
    }
  }

  /** Names of the programs that attached. */
  get attachedProbes(): string[] {
    return this.attachResults.filter((r) => r.status === 'attached').map((r) => r.name);
  }

  /** Drains the ring buffer every `intervalMs` from now on. */
  startDraining(intervalMs: number): void {
    this.ring.start(intervalMs);
  }

  /** Drains the ring buffer now; returns the number of records. */
  drain(): number {
    return this.ring.drain();
  }

  /** Whether the per-call hooks run (UDP counted, owners of accepted sockets learnt). */
  get perCallHooks(): boolean {
    return PER_CALL_PROGRAMS.every((name) => this.object.isAttached(name));
  }

  /**
   * Gives the kernel an entry for each of these pre-existing TCP connections: with this
   * process's tgid in control[ADOPTER], the receive hook adopts the socket that a zero-byte
   * peek reaches (see bpf/socket_stats.bpf.c); when it is not attached (UDP off), it is for
   * this moment. The TCP_EXISTING events carry the counters at adoption, the baseline later
   * deltas start from. It drains the ring now and then: call it once onEvent can take events.
   */
  async adoptTcp(sockets: readonly HeldSocket[]): Promise<AdoptionReport> {
    const report: AdoptionReport = { adopted: 0, failed: {} };
    if (sockets.length === 0) return report;
    const borrowed = !this.object.isAttached(ADOPTION_PROGRAM);
    if (borrowed) {
      const [hook] = await this.object.attach({ only: [ADOPTION_PROGRAM] });
      if (hook?.status !== 'attached') {
        report.failed[`${ADOPTION_PROGRAM} not attached`] = sockets.length;
        return report;
      }
    }
    this.setControl(Control.ADOPTER, process.pid);
    try {
      for (const [i, s] of sockets.entries()) {
        // One TCP_EXISTING record each: drained as they come, so that a large inventory does
        // not fill the ring.
        if (i % ADOPTION_DRAIN_EVERY === ADOPTION_DRAIN_EVERY - 1) this.drain();
        const errno = peekForeignSocket(s.pid, s.fd);
        if (errno === 0) report.adopted++;
        else {
          const name = errnoName(errno);
          report.failed[name] = (report.failed[name] ?? 0) + 1;
        }
      }
    } finally {
      this.setControl(Control.ADOPTER, 0);
      if (borrowed) this.object.detach(ADOPTION_PROGRAM);
    }
    return report;
  }

  /**
   * Reads every tracked socket's counters: the live TCP entries with the kernel's counters as of
   * now (refresh_tcp copies them into tcp_snapshot and says how many; read in place, mmap), then
   * the UDP table (one FFI call per few thousand sockets), after refresh_udp has sent the final
   * record of each UDP socket that is gone (UDP_CLOSE, in the ring) and removed it. The info
   * handed to `onSocket` is reused for the next entry: info.copy() keeps one.
   */
  readSockets(onSocket: (info: SockInfo) => void): number {
    const read = this.readSockInfo;
    const tcp = this.object.run(REFRESH_TCP_PROGRAM);
    this.object.run(REFRESH_UDP_PROGRAM);
    const { values, valueStride } = this.tcpSnapshot;
    for (let i = 0; i < tcp; i++) onSocket(read(values, i * valueStride));
    return tcp + this.udpSocketReader.read((batch) => {
      for (let i = 0; i < batch.count; i++) onSocket(read(batch.values, i * batch.valueStride));
    });
  }

  /** Reads the per-remote UDP counters; with `remove`, deletes what was read in the same calls. */
  readUdpRemotes(onRemote: (counters: UdpRemoteCounters) => void, remove = false): number {
    return this.udpReader.read((batch) => {
      const k = batch.keys;
      const v = batch.values;
      for (let i = 0; i < batch.count; i++) {
        const key = i * batch.keySize;
        const value = i * batch.valueStride;
        const unknown = k.subarray(key + UDP_REMOTE_KEY.raddr, key + UDP_REMOTE_KEY.raddr + 16).every((x) => x === 0);
        onRemote({
          socketId: readU64(k, key + UDP_REMOTE_KEY.socketId),
          remoteAddr: unknown ? '' : formatIp(k, key + UDP_REMOTE_KEY.raddr),
          remotePort: k.readUInt16LE(key + UDP_REMOTE_KEY.rport),
          bytesSent: readU64(v, value + UDP_REMOTE_STATS.bytesSent),
          bytesReceived: readU64(v, value + UDP_REMOTE_STATS.bytesReceived),
          packetsSent: readU64(v, value + UDP_REMOTE_STATS.packetsSent),
          packetsReceived: readU64(v, value + UDP_REMOTE_STATS.packetsReceived),
        });
      }
    }, { delete: remove });
  }

  /** Kernel-side losses by cause (index = KernelLossCause), totals since load. */
  readDrops(): number[] {
    const drops = new Array<number>(DROP_CAUSES).fill(0);
    this.dropsReader.read((batch) => {
      for (let i = 0; i < batch.count; i++) drops[batch.keys.readUInt32LE(i * batch.keySize)] = readU64(batch.values, i * batch.valueStride);
    });
    return drops;
  }

  private setControl(index: number, value: number): void {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(index);
    const word = Buffer.alloc(8);
    word.writeBigUInt64LE(BigInt(value));
    this.control.update(key, word);
  }

  /** Detaches and closes everything. */
  close(): void {
    this.ring.stop();
    this.object.close();
  }
}
