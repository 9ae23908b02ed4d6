// The collector's table of sockets: what the kernel reported (events and counter maps) and what
// the /proc scan found at startup, turned into wire messages. Each socket is announced once
// (socketOpen, then socketAddress once its 4-tuple is known), then sends counter deltas only
// when they changed, and its final deltas before socketClose. A TCP connection is announced
// when a poll first reads it from the kernel's map, or by its close if it ended before that.
//
// Sockets found in /proc get ids of their own (from 2^40 up, apart from the kernel's, which
// count from 1). When the kernel later sees such a socket (TCP_EXISTING, or a socket_id 0
// close), it is matched by 4-tuple and network namespace: no duplicate, no gap.

import { CloseCause, EntityFlags, type MessageInput, type MessageName, SocketProtocol, SocketRole, formatIp } from '@ebpf-net/protocol';
import { EventType, KernelCloseCause, KernelRole, SockFlag } from '../kernel/abi.js';
import type { SockInfo, SocketEvent } from '../kernel/events.js';
import type { UdpRemoteCounters } from '../kernel/probes.js';
import { type AddressWords, copyWords, localBytes, remoteBytes, wordsFromText, wordsToBytes } from './address-words.js';
import type { SavedConnection, SavedCounters } from './saved-connections.js';

export interface Outbox {
  readonly connected: boolean;
  /** Encodes (or drops) the message before it returns: the caller may reuse the object. */
  send<N extends MessageName>(name: N, message: MessageInput<N>): void;
  /** send() bound to one kind of message, for the per-connection messages. */
  sender<N extends MessageName>(name: N): (message: MessageInput<N>) => void;
}

/** A socket found by the startup scan of /proc. */
export interface ExistingSocket {
  protocol: number;
  family: number;
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
  netns: number;
  pid: number;
  role: number;
}

/** Where the counters come from each interval. */
export interface CounterSource {
  /** Hands every waiting lifecycle event to the trackers now. */
  drain(): number;
  readSockets(onSocket: (info: SockInfo) => void): number;
  readUdpRemotes(onRemote: (counters: UdpRemoteCounters) => void, remove?: boolean): number;
}

/** One socket: identity, addresses once known, and the counters as last sent. */
class Tracked implements AddressWords {
  localPort = 0;
  remotePort = 0;
  role: number = SocketRole.UNKNOWN;
  /** socketAddress was sent (TCP: once established; UDP: at open). */
  addressKnown = false;
  l0 = 0;
  l1 = 0;
  l2 = 0;
  l3 = 0;
  r0 = 0;
  r1 = 0;
  r2 = 0;
  r3 = 0;
  // Counters as last sent (TCP; cumulative values from the kernel).
  bytesSent = 0;
  bytesReceived = 0;
  segsOut = 0;
  segsIn = 0;
  retransmits = 0;
  srttUs = 0;
  /** How the socket ended, once the kernel reported it; the close is sent once connected (TCP) or after the next poll (UDP). */
  closeCause: number = CloseCause.NORMAL;
  /** The kernel's last counters, kept while the close waits for a connection. */
  finalInfo: SockInfo | undefined = undefined;

  constructor(
    readonly id: number,
    public pid: number,
    readonly protocol: number,
    readonly family: number,
    readonly flags: number,
    readonly netns: number,
  ) {}

  /** Counters as reported by the collector that ran before this one (saved-connections.ts). */
  restoreCounters(saved: SavedCounters): void {
    this.bytesSent = saved.bytesSent;
    this.bytesReceived = saved.bytesReceived;
    this.segsOut = saved.segsOut;
    this.segsIn = saved.segsIn;
    this.retransmits = saved.retransmits;
  }

  /** The kernel's cumulative counters as the new base of deltas (never lower than before), srtt as is. */
  takeCounters(info: SockInfo): void {
    this.bytesSent = Math.max(this.bytesSent, info.bytesSent);
    this.bytesReceived = Math.max(this.bytesReceived, info.bytesReceived);
    this.segsOut = Math.max(this.segsOut, info.segsOut);
    this.segsIn = Math.max(this.segsIn, info.segsIn);
    this.retransmits = Math.max(this.retransmits, info.retransmits);
    this.srttUs = info.srttUs;
  }

  setAddress(localPort: number, remotePort: number, role: number): void {
    this.localPort = localPort;
    this.remotePort = remotePort;
    this.role = role;
    this.addressKnown = true;
  }
}

export interface SocketTrackerLimits {
  /** Sockets tracked at once (live ones and closes waiting for the reducer). */
  maxSockets: number;
}

const FIRST_SCAN_ID = 2 ** 40;
const UNKNOWN_ADDR = '::';

// Outbox.send encodes before it returns, so one object per message kind is filled and reused
// (under connection churn these are tens of thousands a second).
const openMessage: MessageInput<'socketOpen'> = { socketId: 0, pid: 0, protocol: 0, family: 0, flags: 0 };
const addressMessage: MessageInput<'socketAddress'> = { socketId: 0, localAddr: localBytes, remoteAddr: remoteBytes, localPort: 0, remotePort: 0, role: 0 };
const statsMessage: MessageInput<'socketStats'> = { socketId: 0, bytesSent: 0, bytesReceived: 0, segmentsSent: 0, segmentsReceived: 0, retransmits: 0, srttUs: 0 };
const closeMessage: MessageInput<'socketClose'> = { socketId: 0, cause: 0 };

export class SocketTracker {
  private readonly byKernelId = new Map<number, Tracked>();
  /** Sockets from the /proc scan that the kernel has not named yet. */
  private readonly scanned = new ScannedSockets();
  /** Closes the reducer has not heard of yet, by table key; sent as soon as connected. */
  private readonly closing = new Map<number, Tracked>();
  /** UDP closes wait for the poll that reads their last per-remote counters. */
  private readonly udpClosing = new Map<number, Tracked>();
  private nextScanId = FIRST_SCAN_ID;
  /** Sockets not tracked because the table was full. */
  dropped = 0;
  /** UDP per-remote counters read for a socket with no entry here (its open event was lost). */
  unknownUdpSockets = 0;
  /** Counters the previous collector reported, by connection, until the first poll (see restoreFrom). */
  private saved = new Map<string, SavedCounters>();
  private readonly openOut: (m: MessageInput<'socketOpen'>) => void;
  private readonly addressOut: (m: MessageInput<'socketAddress'>) => void;
  private readonly statsOut: (m: MessageInput<'socketStats'>) => void;
  private readonly closeOut: (m: MessageInput<'socketClose'>) => void;

  constructor(
    private readonly out: Outbox,
    private readonly limits: SocketTrackerLimits,
  ) {
    this.openOut = out.sender('socketOpen');
    this.addressOut = out.sender('socketAddress');
    this.statsOut = out.sender('socketStats');
    this.closeOut = out.sender('socketClose');
  }

  get size(): number {
    return this.byKernelId.size + this.scanned.size;
  }

  /**
   * The counters a previous collector reported for connections still open (saved-connections.ts):
   * an adopted connection found there counts its first delta from them, not from its adoption.
   * Kept until the first poll, which has adopted all there is to adopt.
   */
  restoreFrom(saved: readonly SavedConnection[]): void {
    this.saved = new Map(saved.map((c) => [tupleKey(SocketProtocol.TCP, c.localAddr, c.localPort, c.remoteAddr, c.remotePort, c.netns), c]));
  }

  /** Live TCP connections with the counters as last sent, for the next collector (saved-connections.ts). */
  liveTcpConnections(): SavedConnection[] {
    const out: SavedConnection[] = [];
    for (const [key, t] of this.byKernelId) {
      if (t.protocol !== SocketProtocol.TCP || !t.addressKnown || this.closing.has(key)) continue;
      wordsToBytes(t);
      out.push({
        netns: t.netns, localAddr: formatIp(localBytes, 0), localPort: t.localPort, remoteAddr: formatIp(remoteBytes, 0), remotePort: t.remotePort,
        bytesSent: t.bytesSent, bytesReceived: t.bytesReceived, segsOut: t.segsOut, segsIn: t.segsIn, retransmits: t.retransmits,
      });
    }
    return out;
  }

  /** Takes the sockets the startup scan found; they are announced as pre-existing. */
  addExisting(sockets: readonly ExistingSocket[]): void {
    for (const s of sockets) {
      if (this.size >= this.limits.maxSockets) {
        this.dropped++;
        continue;
      }
      const t = new Tracked(this.nextScanId++, s.pid, s.protocol, s.family, EntityFlags.PREEXISTING, s.netns);
      wordsFromText(s.localAddr, s.remoteAddr, t);
      t.setAddress(s.localPort, s.remotePort, s.role);
      this.scanned.add(s, t);
      this.announce(t);
    }
  }

  onEvent(e: SocketEvent): void {
    const info = e.info;
    switch (e.type) {
      case EventType.UDP_OPEN: {
        const t = this.track(info, 0);
        if (t && !t.addressKnown) this.learnAddress(t, info);
        return;
      }
      case EventType.TCP_EXISTING: {
        const t = this.trackAdopted(info);
        if (t && !t.addressKnown) this.learnAddress(t, info);
        return;
      }
      case EventType.SOCK_PID: {
        const t = this.byKernelId.get(info.socketId);
        if (t && t.pid !== info.pid) {
          t.pid = info.pid;
          this.sendOpen(t, 0); // the reducer takes the new owner from a repeated socketOpen
        }
        return;
      }
      case EventType.TCP_CLOSE:
        this.onTcpClose(info, e.cause);
        return;
      case EventType.UDP_CLOSE: {
        const t = this.byKernelId.get(info.socketId);
        if (t) this.udpClosing.set(info.socketId, t); // closeCause stays NORMAL
        return;
      }
      default:
        return; // listen events: nothing to report per socket
    }
  }

  /**
   * Reads the counter maps and sends what changed; then sends the closes that were waiting.
   * Skipped while disconnected: the kernel keeps counting and the next poll sends it all.
   */
  poll(source: CounterSource): void {
    if (!this.out.connected) return;
    // Events first: a UDP socket's open event may still wait in the ring while its counters are
    // already in the maps, and UDP counters are deleted as they are read.
    source.drain();
    let drainedAgain = false;
    source.readSockets((info) => {
      if (info.socketId === 0) return;
      // Not known yet: a TCP connection opened since the last read (there is no open event), a
      // UDP socket whose open event was lost; an adopted one whose event was lost counts from here.
      const t = this.byKernelId.get(info.socketId) ?? ((info.flags & SockFlag.PREEXISTING) !== 0 ? this.trackAdopted(info) : this.track(info, 0));
      if (!t) return;
      if (!t.addressKnown && info.protocol === SocketProtocol.TCP && (info.flags & SockFlag.ESTABLISHED) !== 0) this.learnAddress(t, info);
      if (info.protocol === SocketProtocol.TCP) this.sendDelta(t, info);
    });
    if (this.saved.size > 0) this.saved = new Map(); // every connection still open is adopted by now
    // Only closes known before this read are finished after it: one drained during the read
    // may have counters this pass did not see, so it waits for the next poll.
    const udpClosed = [...this.udpClosing];
    this.udpClosing.clear();
    source.readUdpRemotes((r) => {
      let t = this.byKernelId.get(r.socketId);
      if (!t && !drainedAgain) {
        drainedAgain = true; // its open event came after the first drain
        source.drain();
        t = this.byKernelId.get(r.socketId);
      }
      if (!t) {
        this.unknownUdpSockets++;
        return;
      }
      this.out.send('udpStats', {
        socketId: t.id,
        remoteAddr: r.remoteAddr || UNKNOWN_ADDR,
        remotePort: r.remotePort,
        bytesSent: r.bytesSent,
        bytesReceived: r.bytesReceived,
        packetsSent: r.packetsSent,
        packetsReceived: r.packetsReceived,
      });
    }, true);
    for (const [key, t] of udpClosed) this.closing.set(key, t);
    this.sendPendingCloses();
  }

  /** After a (re)connect: every live socket (and every close not yet delivered), flagged as snapshot. */
  snapshot(): void {
    for (const t of this.all()) {
      this.sendOpen(t, EntityFlags.SNAPSHOT);
      if (t.addressKnown) this.sendAddress(t);
    }
  }

  /** Sends the closes the reducer has not heard of (final deltas first). */
  sendPendingCloses(): void {
    if (!this.out.connected) return;
    for (const [key, t] of this.closing) {
      this.sendClose(t, t.finalInfo);
      this.byKernelId.delete(key);
    }
    this.closing.clear();
  }

  /** The final deltas (when the kernel gave them), then socketClose. */
  private sendClose(t: Tracked, finalInfo: SockInfo | undefined): void {
    if (finalInfo) this.sendDelta(t, finalInfo);
    closeMessage.socketId = t.id;
    closeMessage.cause = t.closeCause;
    this.closeOut(closeMessage);
  }

  private *all(): IterableIterator<Tracked> {
    yield* this.byKernelId.values();
    yield* this.scanned.values();
  }

  /** The entry for a kernel socket, created (and announced) on first sight. */
  private track(info: SockInfo, flags: number): Tracked | undefined {
    if (info.socketId === 0) return undefined; // the kernel's table was full: counted there
    const known = this.byKernelId.get(info.socketId);
    if (known) return known;
    // A socket the scan found, now named by the kernel?
    const scanned = this.scanned.take(info);
    if (scanned) {
      this.byKernelId.set(info.socketId, scanned);
      return scanned;
    }
    if (this.size >= this.limits.maxSockets) {
      this.dropped++;
      return undefined;
    }
    const t = new Tracked(info.socketId, info.pid, info.protocol, info.family, flags, info.netns);
    this.byKernelId.set(info.socketId, t);
    this.announce(t);
    return t;
  }

  /**
   * A TCP connection the kernel adopted at start-up: tracked as pre-existing, and since its
   * counters count from the connection's start, the ones read now are the baseline.
   */
  private trackAdopted(info: SockInfo): Tracked | undefined {
    const t = this.track(info, EntityFlags.PREEXISTING);
    if (!t) return t;
    t.takeCounters(info);
    const saved = this.saved.size > 0 ? this.saved.get(tupleKey(info.protocol, info.localAddr, info.localPort, info.remoteAddr, info.remotePort, info.netns)) : undefined;
    // Counters that only grow: a saved value above the kernel's is another connection's.
    if (saved && saved.bytesSent <= info.bytesSent && saved.bytesReceived <= info.bytesReceived && saved.segsOut <= info.segsOut && saved.segsIn <= info.segsIn) {
      t.restoreCounters(saved);
    }
    return t;
  }

  private onTcpClose(info: SockInfo, cause: number): void {
    // socket_id 0: a connection the kernel had no entry for, so no baseline for its lifetime
    // counters either; it closes without a last delta.
    const untracked = info.socketId === 0;
    let t = untracked ? this.scanned.take(info) : this.byKernelId.get(info.socketId);
    if (!t && !untracked) t = this.track(info, 0); // opened and closed between two reads: reported whole
    if (!t) return;
    if (!t.addressKnown && info.localPort !== 0) this.learnAddress(t, info);
    t.closeCause = wireCause(cause);
    const key = untracked ? -t.id : info.socketId; // a scanned socket is kept under its own id until sent
    if (this.out.connected) {
      this.sendClose(t, untracked ? undefined : info);
      this.byKernelId.delete(key);
      return;
    }
    if (!untracked) t.finalInfo = info.copy(); // `info` is the kernel reader's, reused for the next event
    this.byKernelId.set(key, t);
    this.closing.set(key, t);
  }

  private learnAddress(t: Tracked, info: SockInfo): void {
    const role = info.role === KernelRole.CLIENT ? SocketRole.CLIENT : info.role === KernelRole.SERVER ? SocketRole.SERVER : SocketRole.UNKNOWN;
    copyWords(info, t);
    t.setAddress(info.localPort, info.remotePort, role);
    this.sendAddress(t);
  }

  private announce(t: Tracked): void {
    this.sendOpen(t, 0);
    if (t.addressKnown) this.sendAddress(t);
  }

  private sendOpen(t: Tracked, extraFlags: number): void {
    const m = openMessage;
    m.socketId = t.id;
    m.pid = t.pid;
    m.protocol = t.protocol;
    m.family = t.family;
    m.flags = t.flags | extraFlags;
    this.openOut(m);
  }

  private sendAddress(t: Tracked): void {
    wordsToBytes(t); // into localBytes and remoteBytes, which addressMessage points at
    const m = addressMessage;
    m.socketId = t.id;
    m.localPort = t.localPort;
    m.remotePort = t.remotePort;
    m.role = t.role;
    this.addressOut(m);
  }

  /**
   * Sends what changed since the last update; the kernel's counters are cumulative. A counter
   * read lower than last time (bytes_received, read between the FIN's sequence number and its
   * flag) is not a change: the next read that passes the old value counts from it.
   */
  private sendDelta(t: Tracked, info: SockInfo): void {
    const bytesSent = Math.max(0, info.bytesSent - t.bytesSent);
    const bytesReceived = Math.max(0, info.bytesReceived - t.bytesReceived);
    const segmentsSent = Math.max(0, info.segsOut - t.segsOut);
    const segmentsReceived = Math.max(0, info.segsIn - t.segsIn);
    const retransmits = Math.max(0, info.retransmits - t.retransmits);
    if (bytesSent === 0 && bytesReceived === 0 && segmentsSent === 0 && segmentsReceived === 0 && retransmits === 0 && info.srttUs === t.srttUs) return;
    const m = statsMessage;
    m.socketId = t.id;
    m.bytesSent = bytesSent;
    m.bytesReceived = bytesReceived;
    m.segmentsSent = segmentsSent;
    m.segmentsReceived = segmentsReceived;
    m.retransmits = retransmits;
    m.srttUs = info.srttUs;
    this.statsOut(m);
    t.takeCounters(info);
  }
}

/**
 * The scan's sockets by 4-tuple and namespace, until the kernel names them. Most sockets the
 * kernel names were never scanned (every new connection): the local port, a number, rules them
 * out before a key string is built.
 */
class ScannedSockets {
  private readonly byTuple = new Map<string, Tracked>();
  /** How many scanned sockets have each local port. */
  private readonly localPorts = new Map<number, number>();

  get size(): number {
    return this.byTuple.size;
  }

  add(s: ExistingSocket, t: Tracked): void {
    this.byTuple.set(tupleKey(s.protocol, s.localAddr, s.localPort, s.remoteAddr, s.remotePort, s.netns), t);
    this.localPorts.set(s.localPort, (this.localPorts.get(s.localPort) ?? 0) + 1);
  }

  /** The scanned socket the kernel's `info` names, taken out; undefined if none. */
  take(info: SockInfo): Tracked | undefined {
    const sharing = this.localPorts.get(info.localPort);
    if (sharing === undefined) return undefined;
    const key = tupleKey(info.protocol, info.localAddr, info.localPort, info.remoteAddr, info.remotePort, info.netns);
    const t = this.byTuple.get(key);
    if (!t) return undefined;
    this.byTuple.delete(key);
    if (sharing > 1) this.localPorts.set(info.localPort, sharing - 1);
    else this.localPorts.delete(info.localPort);
    return t;
  }

  values(): IterableIterator<Tracked> {
    return this.byTuple.values();
  }
}

function tupleKey(protocol: number, localAddr: string, localPort: number, remoteAddr: string, remotePort: number, netns: number): string {
  return `${protocol}|${localAddr}|${localPort}|${remoteAddr}|${remotePort}|${netns}`;
}

/** Kernel close causes 0-4 are the wire's; an aborted connect and a kernel error end normally on the wire. */
function wireCause(cause: number): number {
  return cause <= KernelCloseCause.REFUSED ? cause : CloseCause.NORMAL;
}
