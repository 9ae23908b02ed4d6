// A flow is one connection (TCP) or one address pair (UDP), with whichever of its two ends
// the collectors reported. Each direction is counted once: by the end that sent, when it is
// observed, else by the end that received.

import type { NodeState } from '../state/node-state.js';
import type { SocketEnd, UdpPeer } from '../state/entities.js';

export interface Address {
  readonly addr: string;
  readonly port: number;
}

export class TcpFlow {
  client: SocketEnd | undefined = undefined;
  server: SocketEnd | undefined = undefined;
  /** Connection events since the last interval, counted once per flow whichever end saw them. */
  newConnections = 0;
  resets = 0;
  synTimeouts = 0;
  /** Opens and abnormal ends (resets, SYN timeouts) reported by either end or both, each counted once. */
  readonly opens = new EitherEndCount();
  readonly abnormalEnds = new EitherEndCount();
  /** The series this flow feeds, per aggregation level; the aggregator owns it. */
  readonly series = new SeriesCache();
  /** Set while the aggregator holds the flow back for its other end (see ReducerOptions.matchWindowMs). */
  awaitingPeer = false;

  constructor(
    readonly key: string,
    /** The addresses of the two sides (their ports are in the key). */
    readonly clientAddr: string,
    readonly serverAddr: string,
    /** When the reducer first saw an end of it. */
    readonly bornMs: number,
  ) {}

  get open(): boolean {
    return (this.client !== undefined && !this.client.closed) || (this.server !== undefined && !this.server.closed);
  }
}

/**
 * Counts events of a connection that its client end, its server end or both may report (an
 * open, a reset). Each side's reports are numbered; a report is a new event when its number
 * passes the count so far. Two connections on one four-tuple are then two events, and one
 * seen from both ends is one, whatever order the two collectors' reports arrive in.
 */
export class EitherEndCount {
  private client = 0;
  private server = 0;
  private counted = 0;

  /** Records one report from a side; true if it is an event not counted yet. */
  report(fromClient: boolean): boolean {
    const n = fromClient ? ++this.client : ++this.server;
    if (n <= this.counted) return false;
    this.counted = n;
    return true;
  }
}

/** A UDP address pair; side A has the address that sorts first. */
export class UdpFlow {
  a: UdpPeer | undefined = undefined;
  b: UdpPeer | undefined = undefined;
  /**
   * A side was reported (and is still there, or its socket closed after its last report): what
   * it sent is counted by it alone, also after its socket is gone (a late report of the other
   * side receiving those datagrams must not count them again).
   */
  seenA = false;
  seenB = false;
  /** Intervals since either side last exchanged a datagram. */
  idleIntervals = 0;
  readonly series = new SeriesCache();
  awaitingPeer = false;

  constructor(
    readonly key: string,
    readonly sideA: Address,
    readonly sideB: Address,
    readonly bornMs: number,
  ) {}
}

const NO_SERIES: readonly unknown[] = [];

/** The aggregator's per-flow cache of resolved series; valid while `epoch` matches. */
export class SeriesCache {
  epoch = -1;
  entries: readonly unknown[] = NO_SERIES;

  /** An end joined the flow: its labels must be resolved again. */
  invalidate(): void {
    this.epoch = -1;
  }
}

export function isLoopback(addr: string): boolean {
  return addr.startsWith('127.') || addr === '::1';
}

/**
 * Loopback addresses mean the same thing on every node but name different sockets, so their
 * flows are keyed per node; every other address is taken as unique across the cluster.
 */
export function flowScope(node: NodeState, a: string, b: string): string {
  return isLoopback(a) || isLoopback(b) ? `${node.nodeId}/` : '';
}
