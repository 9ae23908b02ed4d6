// What a collector reports about its node: processes, containers and sockets.

import { SocketRole } from '@ebpf-net/protocol';
import type { TcpFlow, UdpFlow } from '../flows/flow.js';
import type { NodeState } from './node-state.js';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  cgroupId: number;
  comm: string;
  cmdline: string;
  /** Snapshot generation in which it was last reported. */
  seen: number;
}

export interface ContainerInfo {
  cgroupId: number;
  runtime: number;
  containerId: string;
  name: string;
  image: string;
  podName: string;
  podNamespace: string;
  podUid: string;
  seen: number;
}

/**
 * One socket on one node. It accumulates what it did during the current interval; the
 * aggregator moves that into its flow's series and resets it.
 */
export class SocketEnd {
  pid = 0;
  protocol = 0;
  family = 0;
  flags = 0;
  localAddr = '';
  remoteAddr = '';
  localPort = 0;
  remotePort = 0;
  role: number = SocketRole.UNKNOWN;
  /** The TCP flow this end belongs to, once its addresses are known. */
  flow: TcpFlow | undefined = undefined;
  /** UDP: one association per remote address and port. */
  udpPeers: Map<string, UdpPeer> | undefined = undefined;
  closed = false;
  seen = 0;

  // This interval's deltas (TCP).
  bytesSent = 0;
  bytesReceived = 0;
  segmentsSent = 0;
  segmentsReceived = 0;
  retransmits = 0;
  /** Latest smoothed RTT, µs; 0 when none was reported this interval. */
  srttUs = 0;

  constructor(
    readonly node: NodeState,
    readonly socketId: number,
  ) {}

  get hasAddresses(): boolean {
    return this.localPort !== 0 || this.remotePort !== 0;
  }

  /** Takes over what another end did this interval (it is not counted on its own). */
  absorbDeltas(from: SocketEnd): void {
    this.bytesSent += from.bytesSent;
    this.bytesReceived += from.bytesReceived;
    this.segmentsSent += from.segmentsSent;
    this.segmentsReceived += from.segmentsReceived;
    this.retransmits += from.retransmits;
    if (this.srttUs === 0) this.srttUs = from.srttUs;
    from.resetDeltas();
  }

  resetDeltas(): void {
    this.bytesSent = this.bytesReceived = this.segmentsSent = this.segmentsReceived = this.retransmits = this.srttUs = 0;
  }
}

/** What one UDP socket exchanged with one remote address during the interval. */
export class UdpPeer {
  flow: UdpFlow | undefined = undefined;
  bytesSent = 0;
  bytesReceived = 0;
  packetsSent = 0;
  packetsReceived = 0;

  constructor(
    readonly socket: SocketEnd,
    readonly remoteAddr: string,
    readonly remotePort: number,
  ) {}

  /** Takes over what another peer did this interval (it is not counted on its own). */
  absorbDeltas(from: UdpPeer): void {
    this.bytesSent += from.bytesSent;
    this.bytesReceived += from.bytesReceived;
    this.packetsSent += from.packetsSent;
    this.packetsReceived += from.packetsReceived;
    from.resetDeltas();
  }

  resetDeltas(): void {
    this.bytesSent = this.bytesReceived = this.packetsSent = this.packetsReceived = 0;
  }
}
