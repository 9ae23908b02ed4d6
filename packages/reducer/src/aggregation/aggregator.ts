// At the end of each interval, moves what every flow's ends did into the flow's series, at
// each configured level, and resets the ends for the next interval. Each direction of a flow
// is counted once: by its sender when observed, else by its receiver. A new flow seen from one
// end is held back (its ends keep their deltas) until its other end arrives or the match
// window passes, so that a connection whose two collectors report it with some skew is
// counted once, under both ends' labels.

import type { TcpFlow, UdpFlow } from '../flows/flow.js';
import type { FlowTable } from '../flows/flow-table.js';
import type { SeriesPoint } from '../outputs/report.js';
import type { SocketEnd, UdpPeer } from '../state/entities.js';
import type { NodeState, StateObserver } from '../state/node-state.js';
import { type EndpointInfo, type Level, endpointValues, workloadOf } from './levels.js';
import { type FlowSeries, SeriesStore } from './series.js';

export interface AggregatorOptions {
  levels: readonly Level[];
  maxSeries: number;
  /** A series that nothing fed for this many intervals is forgotten. */
  seriesIdleIntervals: number;
  /** A UDP address pair idle for this many intervals is forgotten. */
  udpIdleIntervals: number;
}

export class Aggregator implements StateObserver {
  readonly series: SeriesStore;
  /** Bumped when processes, containers or node addresses change, so that flows resolve their labels again. */
  private metadataEpoch = 0;
  /** Series by endpoint pair (see resolve), valid while pairsEpoch is the metadata epoch. */
  private readonly pairs = new Map<string, FlowSeries[]>();
  private pairsEpoch = 0;

  constructor(
    private readonly flows: FlowTable,
    /** The node a (non-loopback) address belongs to, when a collector reported it as local. */
    private readonly nodeOfAddress: (addr: string) => NodeState | undefined,
    private readonly options: AggregatorOptions,
    onFirstOverflow: (level: Level) => void,
  ) {
    this.series = new SeriesStore(options.maxSeries, options.seriesIdleIntervals, onFirstOverflow);
  }

  metadataChanged(): void {
    this.metadataEpoch++;
  }

  /** A connection whose two ends closed: its last deltas go into this interval's series now. */
  connectionEnded(flow: TcpFlow): void {
    this.collectTcp(flow, Number.NEGATIVE_INFINITY);
  }

  /** Appends this interval's points for every flow series to `out`; flows younger than matchWindowMs with one end wait. */
  collect(out: SeriesPoint[], nowMs: number, matchWindowMs: number): void {
    const bornAfter = nowMs - matchWindowMs;
    for (const flow of this.flows.tcp.values()) this.collectTcp(flow, bornAfter);
    for (const flow of [...this.flows.udp.values()]) this.collectUdp(flow, bornAfter);
    this.series.flush(out);
  }

  private collectTcp(flow: TcpFlow, bornAfter: number): void {
    const c = flow.client;
    const s = flow.server;
    flow.awaitingPeer = (!c || !s) && flow.bornMs > bornAfter;
    if (flow.awaitingPeer) return;
    const c2sBytes = c ? c.bytesSent : s!.bytesReceived;
    const s2cBytes = s ? s.bytesSent : c!.bytesReceived;
    const c2sSegments = c ? c.segmentsSent : s!.segmentsReceived;
    const s2cSegments = s ? s.segmentsSent : c!.segmentsReceived;
    const open = flow.open;
    const busy = open || c2sBytes + s2cBytes + flow.newConnections + flow.resets + flow.synTimeouts > 0;
    const series = this.resolve(flow, c, flow.clientAddr, s, flow.serverAddr);
    for (let i = 0; i < series.length; i += 2) {
      const cs = series[i]!;
      const sc = series[i + 1]!;
      cs.hasTcp = sc.hasTcp = true;
      cs.tcpBytes.add(c2sBytes);
      sc.tcpBytes.add(s2cBytes);
      cs.tcpSegments.add(c2sSegments);
      sc.tcpSegments.add(s2cSegments);
      if (c) cs.tcpRetrans.add(c.retransmits);
      if (s) sc.tcpRetrans.add(s.retransmits);
      cs.tcpNewSockets.add(flow.newConnections);
      cs.tcpResets.add(flow.resets);
      cs.tcpSynTimeouts.add(flow.synTimeouts);
      if (open) cs.active++;
      if (c && c.srttUs > 0) cs.rtt.observe(c.srttUs / 1e6);
      if (s && s.srttUs > 0) sc.rtt.observe(s.srttUs / 1e6);
      if (busy) cs.touched = sc.touched = true;
    }
    c?.resetDeltas();
    s?.resetDeltas();
    flow.newConnections = flow.resets = flow.synTimeouts = 0;
  }

  private collectUdp(flow: UdpFlow, bornAfter: number): void {
    const a = flow.a;
    const b = flow.b;
    flow.awaitingPeer = !(flow.seenA && flow.seenB) && flow.bornMs > bornAfter;
    if (flow.awaitingPeer) return;
    // A side's sending as the other side received it: only while that side was never reported.
    const a2bBytes = a ? a.bytesSent : flow.seenA ? 0 : b!.bytesReceived;
    const b2aBytes = b ? b.bytesSent : flow.seenB ? 0 : a!.bytesReceived;
    const a2bPackets = a ? a.packetsSent : flow.seenA ? 0 : b!.packetsReceived;
    const b2aPackets = b ? b.packetsSent : flow.seenB ? 0 : a!.packetsReceived;
    a?.resetDeltas();
    b?.resetDeltas();
    if (a2bPackets + b2aPackets === 0) {
      if (++flow.idleIntervals >= this.options.udpIdleIntervals) {
        if (a) this.forgetUdpPeer(a);
        if (b) this.forgetUdpPeer(b);
      }
      return;
    }
    flow.idleIntervals = 0;
    const series = this.resolve(flow, a?.socket, flow.sideA.addr, b?.socket, flow.sideB.addr);
    for (let i = 0; i < series.length; i += 2) {
      const ab = series[i]!;
      const ba = series[i + 1]!;
      ab.hasUdp = ba.hasUdp = true;
      ab.udpBytes.add(a2bBytes);
      ba.udpBytes.add(b2aBytes);
      ab.udpPackets.add(a2bPackets);
      ba.udpPackets.add(b2aPackets);
      ab.touched = ba.touched = true;
    }
  }

  /**
   * The flow's series, two per level (forward, backward), resolved again when labels may have
   * changed. An end is a reported socket, or else the peer's address.
   */
  private resolve(flow: TcpFlow | UdpFlow, x: SocketEnd | undefined, xAddr: string, y: SocketEnd | undefined, yAddr: string): FlowSeries[] {
    const cache = flow.series;
    if (cache.epoch === this.metadataEpoch && !hasEvicted(cache.entries as FlowSeries[])) return cache.entries as FlowSeries[];
    // Flows between the same two endpoints (process and process, or process and address) share
    // their series: under connection churn, each new connection is one lookup here.
    if (this.pairsEpoch !== this.metadataEpoch || this.pairs.size >= this.options.maxSeries) {
      this.pairs.clear();
      this.pairsEpoch = this.metadataEpoch;
    }
    const pairKey = `${endpointKey(x, xAddr)}\u0002${endpointKey(y, yAddr)}`;
    let out = this.pairs.get(pairKey);
    if (!out || hasEvicted(out)) {
      const xi = x ? this.endInfo(x) : this.addressInfo(xAddr);
      const yi = y ? this.endInfo(y) : this.addressInfo(yAddr);
      out = [];
      for (const level of this.options.levels) {
        const xv = endpointValues(level, xi);
        const yv = endpointValues(level, yi);
        out.push(this.series.get(level, xv, yv), this.series.get(level, yv, xv));
      }
      this.pairs.set(pairKey, out);
    }
    cache.entries = out;
    cache.epoch = this.metadataEpoch;
    return out;
  }

  private endInfo(end: SocketEnd): EndpointInfo {
    const node = end.node;
    const proc = node.processes.get(end.pid);
    const container = proc ? node.containers.get(proc.cgroupId) : undefined;
    const process = proc?.comm ?? '';
    return {
      node: node.hostname,
      process,
      container: container?.name ?? '',
      namespace: container?.podNamespace ?? '',
      workload: workloadOf(container?.podName ?? '') || container?.name || process || node.hostname,
    };
  }

  /** An end no collector reported: named by the node that owns its address, else by the address. */
  private addressInfo(addr: string): EndpointInfo {
    const node = this.nodeOfAddress(addr)?.hostname ?? addr;
    return { node, process: '', container: '', namespace: '', workload: node };
  }

  private forgetUdpPeer(peer: UdpPeer): void {
    this.flows.detachUdp(peer);
    peer.socket.udpPeers?.delete(`${peer.remoteAddr}|${peer.remotePort}`);
  }
}

/** What an end's labels depend on: its node and process, or (no collector reported it) its address. */
function endpointKey(end: SocketEnd | undefined, addr: string): string {
  return end ? `${end.node.nodeId}\u0000${end.pid}` : `\u0001${addr}`;
}

function hasEvicted(series: readonly FlowSeries[]): boolean {
  for (const s of series) if (s.evicted) return true;
  return false;
}
