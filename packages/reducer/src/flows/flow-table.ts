// Matching: puts each socket end into the flow it belongs to, so that the client end and the
// server end of a connection, reported by one collector or two, meet in one flow.

import { SocketRole } from '@ebpf-net/protocol';
import { BoundedMap, type DropCounts } from '../state/bounded-map.js';
import type { SocketEnd, UdpPeer } from '../state/entities.js';
import { type Address, TcpFlow, UdpFlow, flowScope } from './flow.js';

export interface FlowLimits {
  tcpFlows: number;
  udpFlows: number;
}

export class FlowTable {
  readonly tcp: BoundedMap<string, TcpFlow>;
  readonly udp: BoundedMap<string, UdpFlow>;
  /** Ends refused because their flow already had an open end on that side (a socket seen twice). */
  duplicateEnds = 0;

  constructor(limits: FlowLimits, drops: DropCounts) {
    this.tcp = new BoundedMap('tcp_flows', limits.tcpFlows, drops);
    this.udp = new BoundedMap('udp_flows', limits.udpFlows, drops);
  }

  /** Puts a TCP end whose addresses are known into its flow. Returns the flow, or undefined if refused. */
  attachTcp(end: SocketEnd): TcpFlow | undefined {
    if (end.flow) return end.flow;
    const isClient = roleOf(end) === SocketRole.CLIENT;
    const clientAddr = isClient ? end.localAddr : end.remoteAddr;
    const serverAddr = isClient ? end.remoteAddr : end.localAddr;
    const clientPort = isClient ? end.localPort : end.remotePort;
    const serverPort = isClient ? end.remotePort : end.localPort;
    const key = `${flowScope(end.node, clientAddr, serverAddr)}${clientAddr}|${clientPort}|${serverAddr}|${serverPort}`;
    let flow = this.tcp.get(key);
    if (!flow) {
      flow = new TcpFlow(key, clientAddr, serverAddr, Date.now());
      if (!this.tcp.set(key, flow)) return undefined;
    }
    const current = isClient ? flow.client : flow.server;
    if (current && current !== end) {
      if (!current.closed) {
        this.duplicateEnds++;
        return undefined;
      }
      // The same four-tuple again while the closed end waits for its peer: a new connection.
      // What the closed end did is not counted yet; the new end carries it. (A peer of the old
      // connection that still arrives pairs with the new one: the four-tuple cannot tell them
      // apart. Reuse that quick takes TIME_WAIT reuse and more than the reporting skew.)
      end.absorbDeltas(current);
      current.flow = undefined;
    }
    if (isClient) flow.client = end;
    else flow.server = end;
    end.flow = flow;
    flow.series.invalidate();
    return flow;
  }

  /** Takes a TCP end out of its flow; a flow left with no end is forgotten. */
  detachTcp(end: SocketEnd): void {
    const flow = end.flow;
    if (!flow) return;
    if (flow.client === end) flow.client = undefined;
    if (flow.server === end) flow.server = undefined;
    end.flow = undefined;
    if (!flow.client && !flow.server) this.tcp.delete(flow.key);
  }

  attachUdp(peer: UdpPeer): UdpFlow | undefined {
    if (peer.flow) return peer.flow;
    const local: Address = { addr: peer.socket.localAddr, port: peer.socket.localPort };
    const remote: Address = { addr: peer.remoteAddr, port: peer.remotePort };
    const localFirst = compareAddress(local, remote) <= 0;
    const [a, b] = localFirst ? [local, remote] : [remote, local];
    const key = `${flowScope(peer.socket.node, a.addr, b.addr)}${a.addr}|${a.port}|${b.addr}|${b.port}`;
    let flow = this.udp.get(key);
    if (!flow) {
      flow = new UdpFlow(key, a, b, Date.now());
      if (!this.udp.set(key, flow)) return undefined;
    }
    const current = localFirst ? flow.a : flow.b;
    if (current && current !== peer) {
      if (!current.socket.closed) {
        this.duplicateEnds++;
        return undefined;
      }
      peer.absorbDeltas(current);
      current.flow = undefined;
    }
    if (localFirst) {
      flow.a = peer;
      flow.seenA = true;
    } else {
      flow.b = peer;
      flow.seenB = true;
    }
    peer.flow = flow;
    flow.series.invalidate();
    return flow;
  }

  detachUdp(peer: UdpPeer): void {
    const flow = peer.flow;
    if (!flow) return;
    // A socket that closed made its last report; one whose collector is gone did not, and the
    // other side's view of what it sends counts from now on.
    const final = peer.socket.closed;
    if (flow.a === peer) {
      flow.a = undefined;
      flow.seenA &&= final;
    }
    if (flow.b === peer) {
      flow.b = undefined;
      flow.seenB &&= final;
    }
    peer.flow = undefined;
    if (!flow.a && !flow.b) this.udp.delete(flow.key);
  }
}

/** The end's role, or a guess for sockets found at startup: the lower port is the server's. */
export function roleOf(end: SocketEnd): number {
  if (end.role !== SocketRole.UNKNOWN) return end.role;
  return end.localPort < end.remotePort ? SocketRole.SERVER : SocketRole.CLIENT;
}

function compareAddress(x: Address, y: Address): number {
  if (x.addr !== y.addr) return x.addr < y.addr ? -1 : 1;
  return x.port - y.port;
}
