// Everything one collector reported about its node, kept in bounded tables, and the message
// handlers that keep it up to date. After a reconnect the collector sends a snapshot: what was
// not reported again between snapshotBegin and snapshotEnd is gone.

import { CloseCause, EntityFlags, type MessageName, type MessageOf, SocketProtocol } from '@ebpf-net/protocol';
import type { TcpFlow } from '../flows/flow.js';
import type { FlowTable } from '../flows/flow-table.js';
import { BoundedMap, type DropCounts } from './bounded-map.js';
import { type ContainerInfo, type ProcessInfo, SocketEnd, UdpPeer } from './entities.js';

type Msg<N extends MessageName> = Readonly<MessageOf<N>>;

export interface NodeLimits {
  socketsPerNode: number;
  processesPerNode: number;
  containersPerNode: number;
  udpPeersPerSocket: number;
}

/** Who the node is, from its collector's handshake. */
export interface NodeIdentity {
  nodeId: string;
  hostname: string;
  sessionId: number;
  kernelRelease: string;
  collectorVersion: string;
  probes: string[];
}

/** What the aggregation hears from the nodes' state. */
export interface StateObserver {
  /** Labels derived from processes, containers or node addresses may have changed. */
  metadataChanged(): void;
  /** Both ends of a TCP connection closed: take its last deltas now, before its ends are forgotten. */
  connectionEnded(flow: TcpFlow): void;
}

/** Callbacks from a node to the reducer-wide state. */
export interface NodeContext extends StateObserver {
  readonly flows: FlowTable;
  readonly drops: DropCounts;
  /** A local address of this node, learned from its sockets (names peers seen only from the other side). */
  learnAddress(addr: string, node: NodeState): void;
}

export class NodeState {
  readonly nodeId: string;
  identity: NodeIdentity;
  readonly processes: BoundedMap<number, ProcessInfo>;
  readonly containers: BoundedMap<number, ContainerInfo>;
  readonly sockets: BoundedMap<number, SocketEnd>;
  /** Lost events the collector reported, by LossCause, since the reducer started. */
  readonly lost = new Map<number, number>();
  latestStats: Readonly<MessageOf<'collectorStats'>> | undefined;
  connected = false;
  disconnectedAtMs = 0;
  /** Sockets closed or swept this interval; removed once the aggregator has taken their last deltas. */
  private readonly retired = new Set<SocketEnd>();
  /** Processes that exited; each is forgotten once no socket of its remains (see endInterval). */
  private exited: ProcessInfo[] = [];
  /** How many of this node's sockets each pid owns. */
  private readonly socketsOfPid = new Map<number, number>();
  private generation = 0;

  constructor(
    identity: NodeIdentity,
    private readonly ctx: NodeContext,
    private readonly limits: NodeLimits,
  ) {
    this.nodeId = identity.nodeId;
    this.identity = identity;
    this.processes = new BoundedMap('processes', limits.processesPerNode, ctx.drops);
    this.containers = new BoundedMap('containers', limits.containersPerNode, ctx.drops);
    this.sockets = new BoundedMap('sockets', limits.socketsPerNode, ctx.drops);
    ctx.drops.unknown_socket ??= 0;
  }

  get hostname(): string {
    return this.identity.hostname;
  }

  // One method per message from the collector; the intake calls them.

  snapshotBegin(): void {
    this.generation++;
  }

  snapshotEnd(): void {
    this.sweep();
  }

  processStart(m: Msg<'processStart'>): void {
    this.processes.set(m.pid, { pid: m.pid, ppid: m.ppid, cgroupId: m.cgroupId, comm: m.comm, cmdline: m.cmdline, seen: this.generation });
    this.ctx.metadataChanged();
  }

  processExit(m: Msg<'processExit'>): void {
    const p = this.processes.get(m.pid);
    if (p) this.exited.push(p);
  }

  processCommChange(m: Msg<'processCommChange'>): void {
    const p = this.processes.get(m.pid);
    if (p) {
      p.comm = m.comm;
      this.ctx.metadataChanged();
    }
  }

  containerInfo(m: Msg<'containerInfo'>): void {
    const { cgroupId, runtime, containerId, name, image, podName, podNamespace, podUid } = m;
    this.containers.set(cgroupId, { cgroupId, runtime, containerId, name, image, podName, podNamespace, podUid, seen: this.generation });
    this.ctx.metadataChanged();
  }

  socketOpen(m: Msg<'socketOpen'>): void {
    let end = this.sockets.get(m.socketId);
    if (!end) {
      end = new SocketEnd(this, m.socketId);
      if (!this.sockets.set(m.socketId, end)) return;
      end.pid = m.pid;
      this.countOwner(m.pid, 1);
    } else if (end.pid !== m.pid) {
      // A new owner (the collector's first guess was wrong): the end's flows are named again.
      this.countOwner(end.pid, -1);
      end.pid = m.pid;
      this.countOwner(m.pid, 1);
      end.flow?.series.invalidate();
      if (end.udpPeers) for (const peer of end.udpPeers.values()) peer.flow?.series.invalidate();
    }
    end.protocol = m.protocol;
    end.family = m.family;
    end.flags = m.flags;
    end.seen = this.generation;
  }

  socketAddress(m: Msg<'socketAddress'>): void {
    const end = this.sockets.get(m.socketId);
    if (!end) {
      this.ctx.drops.unknown_socket!++;
      return;
    }
    end.seen = this.generation;
    if (end.flow) return; // addresses of a TCP connection do not change
    end.localAddr = m.localAddr;
    end.remoteAddr = m.remoteAddr;
    end.localPort = m.localPort;
    end.remotePort = m.remotePort;
    end.role = m.role;
    this.ctx.learnAddress(m.localAddr, this);
    if (end.protocol !== SocketProtocol.TCP) return;
    const flow = this.ctx.flows.attachTcp(end);
    if (flow && (end.flags & (EntityFlags.PREEXISTING | EntityFlags.SNAPSHOT)) === 0 && flow.opens.report(flow.client === end)) flow.newConnections++;
  }

  socketStats(m: Msg<'socketStats'>): void {
    const end = this.sockets.get(m.socketId);
    if (end === undefined) {
      this.ctx.drops.unknown_socket!++;
      return;
    }
    end.bytesSent += m.bytesSent;
    end.bytesReceived += m.bytesReceived;
    end.segmentsSent += m.segmentsSent;
    end.segmentsReceived += m.segmentsReceived;
    end.retransmits += m.retransmits;
    if (m.srttUs !== 0) end.srttUs = m.srttUs;
  }

  socketClose(m: Msg<'socketClose'>): void {
    const end = this.sockets.get(m.socketId);
    if (!end) {
      this.ctx.drops.unknown_socket!++;
      return;
    }
    if (end.closed) return;
    end.closed = true;
    const flow = end.flow;
    const abnormal = m.cause === CloseCause.SYN_TIMEOUT || m.cause === CloseCause.RESET_RECEIVED || m.cause === CloseCause.RESET_SENT || m.cause === CloseCause.REFUSED;
    if (flow && abnormal && flow.abnormalEnds.report(flow.client === end)) {
      if (m.cause === CloseCause.SYN_TIMEOUT) flow.synTimeouts++;
      else flow.resets++;
    }
    this.retired.add(end);
    if (flow?.client?.closed && flow.server?.closed) this.ctx.connectionEnded(flow);
  }

  udpStats(m: Msg<'udpStats'>): void {
    const end = this.sockets.get(m.socketId);
    if (!end) {
      this.ctx.drops.unknown_socket!++;
      return;
    }
    const peerKey = `${m.remoteAddr}|${m.remotePort}`;
    end.udpPeers ??= new Map();
    let peer = end.udpPeers.get(peerKey);
    if (!peer) {
      if (end.udpPeers.size >= this.limits.udpPeersPerSocket) {
        this.ctx.drops.udp_peers = (this.ctx.drops.udp_peers ?? 0) + 1;
        return;
      }
      peer = new UdpPeer(end, m.remoteAddr, m.remotePort);
      end.udpPeers.set(peerKey, peer);
      this.ctx.flows.attachUdp(peer);
    }
    peer.bytesSent += m.bytesSent;
    peer.bytesReceived += m.bytesReceived;
    peer.packetsSent += m.packetsSent;
    peer.packetsReceived += m.packetsReceived;
  }

  lostEvents(m: Msg<'lostEvents'>): void {
    this.lost.set(m.cause, (this.lost.get(m.cause) ?? 0) + m.count);
  }

  collectorStats(m: Msg<'collectorStats'>): void {
    this.latestStats = { ...m };
  }

  /** After a snapshot: what was not reported again is gone. */
  private sweep(): void {
    for (const end of this.sockets.values()) {
      if (end.seen < this.generation && !end.closed) {
        end.closed = true;
        this.retired.add(end);
      }
    }
    for (const [pid, p] of this.processes.entries()) if (p.seen < this.generation) this.processes.delete(pid);
    for (const [id, c] of this.containers.entries()) if (c.seen < this.generation) this.containers.delete(id);
    this.ctx.metadataChanged();
  }

  /**
   * Called once the aggregator has taken this interval's deltas: forgets what ended, except ends
   * their flow still needs (see isNeededByFlow).
   */
  endInterval(): void {
    for (const end of this.retired) if (!isNeededByFlow(end)) this.forgetEnded(end);
    if (this.exited.length > 0) {
      // A process's sockets may report after it exited (their closes come later, and the other
      // ends' collectors lag): it names them until the last one is forgotten.
      const lingering: ProcessInfo[] = [];
      let forgot = false;
      for (const p of this.exited) {
        if (this.processes.get(p.pid) !== p) continue; // its pid was reused, or a snapshot dropped it
        if (this.socketsOfPid.has(p.pid)) lingering.push(p);
        else {
          this.processes.delete(p.pid);
          forgot = true;
        }
      }
      this.exited = lingering;
      if (forgot) this.ctx.metadataChanged();
    }
  }

  /** Forgets everything (the collector restarted, or its grace period ran out). */
  clear(): void {
    for (const end of this.sockets.values()) this.forgetSocket(end);
    this.sockets.clear();
    this.socketsOfPid.clear();
    this.processes.clear();
    this.containers.clear();
    this.retired.clear();
    this.exited = [];
    this.ctx.metadataChanged();
  }

  /** A closed socket whose last deltas were taken. */
  forgetEnded(end: SocketEnd): void {
    this.retired.delete(end);
    this.forgetSocket(end);
  }

  private forgetSocket(end: SocketEnd): void {
    this.ctx.flows.detachTcp(end);
    if (end.udpPeers) for (const peer of end.udpPeers.values()) this.ctx.flows.detachUdp(peer);
    if (this.sockets.get(end.socketId) === end) {
      this.sockets.delete(end.socketId);
      this.countOwner(end.pid, -1);
    }
  }

  private countOwner(pid: number, delta: number): void {
    const n = (this.socketsOfPid.get(pid) ?? 0) + delta;
    if (n > 0) this.socketsOfPid.set(pid, n);
    else this.socketsOfPid.delete(pid);
  }
}

/**
 * A closed end stays in its flow while the flow is held back for its other end (the closed end
 * still carries its deltas), and while its other end is open: the closed end counted what it
 * sent, and the open end's late reports of receiving it must not count it again. It also names
 * its side of the flow until the other end closes.
 */
function isNeededByFlow(end: SocketEnd): boolean {
  if (end.flow && (end.flow.awaitingPeer || end.flow.open)) return true; // open: its other end, since this one closed
  if (end.udpPeers) for (const peer of end.udpPeers.values()) if (peer.flow?.awaitingPeer) return true;
  return false;
}
