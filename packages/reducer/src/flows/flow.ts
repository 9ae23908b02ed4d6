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
  /** Set once a new connection / a reset was counted for this flow, so the other end's report of it is not. */
  countedOpen = false;
  countedEnd = false;
  /** The series this flow feeds, per aggregation level; the aggregator owns it. */
  readonly series = new SeriesCache();

  constructor(
    readonly key: string,
    readonly clientSide: Address,
    readonly serverSide: Address,
  ) {}

  get open(): boolean {
    return (this.client !== undefined && !this.client.closed) || (this.server !== undefined && !this.server.closed);
  }
}

/** A UDP address pair; side A has the address that sorts first. */
export class UdpFlow {
  a: UdpPeer | undefined = undefined;
  b: UdpPeer | undefined = undefined;
  /** Intervals since either side last exchanged a datagram. */
  idleIntervals = 0;
  readonly series = new SeriesCache();

  constructor(
    readonly key: string,
    readonly sideA: Address,
    readonly sideB: Address,
  ) {}
}

/** The aggregator's per-flow cache of resolved series; valid while `epoch` matches. */
export class SeriesCache {
  epoch = -1;
  entries: unknown[] = [];
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
