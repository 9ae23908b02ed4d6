// The nodes the reducer knows, by node id. A collector that reconnects with the same session
// finds its node as it left it (its snapshot then corrects it); a collector that restarted
// (a new session) starts its node afresh, since its socket ids start over. A node whose
// collector is gone is kept for a grace period, then forgotten.

import type { FlowTable } from '../flows/flow-table.js';
import { type TcpFlow, isLoopback } from '../flows/flow.js';
import { BoundedMap, type DropCounts } from './bounded-map.js';
import { type NodeContext, type NodeIdentity, type NodeLimits, NodeState, type StateObserver } from './node-state.js';

/** Whoever holds a node's connection; told to let go when another connection claims the node. */
export interface NodeOwner {
  supersede(reason: string): void;
}

export interface RegistryLimits extends NodeLimits {
  nodes: number;
  addresses: number;
}

export class NodeRegistry implements NodeContext {
  readonly nodes: BoundedMap<string, NodeState>;
  private readonly addresses: BoundedMap<string, NodeState>;
  private readonly owners = new Map<NodeState, NodeOwner>();

  constructor(
    readonly flows: FlowTable,
    readonly drops: DropCounts,
    private readonly limits: RegistryLimits,
    private readonly observer: StateObserver,
  ) {
    this.nodes = new BoundedMap('nodes', limits.nodes, drops);
    this.addresses = new BoundedMap('addresses', limits.addresses, drops);
  }

  metadataChanged(): void {
    this.observer.metadataChanged();
  }

  /**
   * Counted and forgotten at once rather than at the end of the interval: under connection churn
   * the ends of a whole interval's connections would otherwise stay in memory.
   */
  connectionEnded(flow: TcpFlow): void {
    const { client, server } = flow;
    this.observer.connectionEnded(flow);
    client?.node.forgetEnded(client);
    server?.node.forgetEnded(server);
  }

  learnAddress(addr: string, node: NodeState): void {
    if (addr === '0.0.0.0' || addr === '::' || isLoopback(addr) || this.addresses.get(addr) === node) return;
    this.addresses.set(addr, node);
    this.metadataChanged(); // peers seen only by this address are named by the node now
  }

  nodeOfAddress(addr: string): NodeState | undefined {
    return this.addresses.get(addr);
  }

  /** Binds a node to a new connection after its handshake; undefined when the node table is full. */
  attach(identity: NodeIdentity, owner: NodeOwner): { node: NodeState; restarted: boolean } | undefined {
    let node = this.nodes.get(identity.nodeId);
    let restarted = false;
    if (node) {
      const previous = this.owners.get(node);
      if (previous && previous !== owner) previous.supersede(`node ${identity.nodeId} connected again`);
      if (node.identity.sessionId !== identity.sessionId) {
        node.clear();
        restarted = true;
      }
      node.identity = identity;
    } else {
      node = new NodeState(identity, this, this.limits);
      if (!this.nodes.set(identity.nodeId, node)) return undefined;
    }
    this.owners.set(node, owner);
    node.connected = true;
    return { node, restarted };
  }

  detach(node: NodeState, owner: NodeOwner, nowMs: number): void {
    if (this.owners.get(node) !== owner) return; // superseded: the new connection owns it
    this.owners.delete(node);
    node.connected = false;
    node.disconnectedAtMs = nowMs;
  }

  /** Forgets nodes disconnected for longer than the grace period; returns their ids. */
  expire(nowMs: number, graceMs: number): string[] {
    const gone: string[] = [];
    for (const [id, node] of this.nodes.entries()) {
      if (node.connected || nowMs - node.disconnectedAtMs < graceMs) continue;
      node.clear();
      this.nodes.delete(id);
      for (const [addr, owner] of this.addresses.entries()) if (owner === node) this.addresses.delete(addr);
      gone.push(id);
    }
    return gone;
  }
}
