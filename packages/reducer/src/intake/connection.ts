// One collector's connection: a stream decoder whose messages go to the collector's node.
// A malformed stream closes this connection only, with a log line naming the peer and the
// byte offset; the reducer keeps serving every other collector. What was applied is
// acknowledged (ack.ts) at most ACK_DELAY_MS after it arrived.

import type { Socket } from 'node:net';
import type { Logger } from '@ebpf-net/common';
import { type MessageHandlers, type MessageOf, ProtocolError, StreamDecoder } from '@ebpf-net/protocol';
import type { NodeState } from '../state/node-state.js';
import type { NodeOwner, NodeRegistry } from '../state/registry.js';
import { ACK_DELAY_MS, encodeAck } from './ack.js';
import type { IntakeStats } from './stats.js';

export interface ConnectionDeps {
  registry: NodeRegistry;
  stats: IntakeStats;
  log: Logger;
  maxFrameBytes: number;
}

export class CollectorConnection implements NodeOwner {
  readonly peer: string;
  lastDataMs = Date.now();
  private node: NodeState | undefined;
  private readonly decoder: StreamDecoder;
  private closed = false;
  private ackTimer: NodeJS.Timeout | undefined;
  /** Messages acknowledged so far. */
  private acked = 0;

  constructor(
    private readonly socket: Socket,
    private readonly deps: ConnectionDeps,
  ) {
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.decoder = new StreamDecoder(this.handlers(), {
      maxFrameBytes: deps.maxFrameBytes,
      onUnknown: (id) => deps.log.debug({ peer: this.peer, id }, 'skipped a message of unknown id'),
    });
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (error) => deps.log.debug({ peer: this.peer, err: error.message }, 'collector connection error'));
    socket.on('close', () => this.onClose());
  }

  get nodeId(): string | undefined {
    return this.node?.nodeId;
  }

  supersede(reason: string): void {
    this.deps.log.info({ peer: this.peer, node: this.node?.nodeId }, `closing the older connection: ${reason}`);
    this.node = undefined;
    this.socket.destroy();
  }

  close(reason: string): void {
    if (this.closed) return;
    this.deps.log.warn({ peer: this.peer, node: this.node?.nodeId }, `closing collector connection: ${reason}`);
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastDataMs = Date.now();
    const stats = this.deps.stats;
    const before = this.decoder.stats.messages;
    const unknownBefore = this.decoder.stats.unknownMessages;
    stats.bytes += chunk.length;
    try {
      this.decoder.push(chunk);
    } catch (error) {
      if (error instanceof ProtocolError) {
        stats.decodeErrors[error.code] = (stats.decodeErrors[error.code] ?? 0) + 1;
        this.deps.log.warn(
          { peer: this.peer, node: this.node?.nodeId, code: error.code, offset: error.offset },
          `closing collector connection: malformed stream: ${error.message}`,
        );
      } else {
        stats.decodeErrors.INTERNAL = (stats.decodeErrors.INTERNAL ?? 0) + 1;
        this.deps.log.error({ peer: this.peer, node: this.node?.nodeId, err: error }, 'closing collector connection: failed to apply a message');
      }
      this.socket.destroy();
      this.closed = true;
    } finally {
      stats.messages += this.decoder.stats.messages - before;
      stats.unknownMessages += this.decoder.stats.unknownMessages - unknownBefore;
    }
    this.ackTimer ??= setTimeout(() => {
      this.ackTimer = undefined;
      this.acknowledge();
    }, ACK_DELAY_MS);
  }

  /** Tells the collector how many messages were applied (skipped unknown ones included). */
  acknowledge(): void {
    if (this.closed || this.socket.destroyed) return;
    const applied = this.decoder.stats.messages + this.decoder.stats.unknownMessages;
    if (applied === this.acked) return;
    this.acked = applied;
    this.socket.write(encodeAck(applied));
  }

  private onHandshake(m: Readonly<MessageOf<'handshake'>>): void {
    const identity = {
      nodeId: m.nodeId,
      hostname: m.hostname || m.nodeId,
      sessionId: m.sessionId,
      kernelRelease: m.kernelRelease,
      collectorVersion: m.collectorVersion,
      probes: [...m.probes],
    };
    if (identity.nodeId === '') throw new ProtocolError('BAD_MAGIC', 'handshake without a node id', this.decoder.offset);
    const attached = this.deps.registry.attach(identity, this);
    if (!attached) {
      this.close(`the node table is full; node ${identity.nodeId} refused`);
      this.closed = true;
      return;
    }
    this.node = attached.node;
    this.deps.log.info(
      { peer: this.peer, node: identity.nodeId, hostname: identity.hostname, version: identity.collectorVersion, kernel: identity.kernelRelease, probes: identity.probes, restarted: attached.restarted },
      attached.restarted ? 'collector connected (restarted: its node starts afresh)' : 'collector connected',
    );
  }

  /** Decoder handlers: each message goes to the node the handshake named. */
  private handlers(): MessageHandlers {
    // The decoder guarantees the handshake comes first, so `node` is set for every later message,
    // unless the node was refused or superseded, in which case the messages are dropped.
    const node = () => this.node;
    return {
      handshake: (m) => this.onHandshake(m),
      snapshotBegin: () => node()?.snapshotBegin(),
      snapshotEnd: () => node()?.snapshotEnd(),
      processStart: (m) => node()?.processStart(m),
      processExit: (m) => node()?.processExit(m),
      processCommChange: (m) => node()?.processCommChange(m),
      containerInfo: (m) => node()?.containerInfo(m),
      socketOpen: (m) => node()?.socketOpen(m),
      socketAddress: (m) => node()?.socketAddress(m),
      socketStats: (m) => node()?.socketStats(m),
      socketClose: (m) => node()?.socketClose(m),
      udpStats: (m) => node()?.udpStats(m),
      lostEvents: (m) => node()?.lostEvents(m),
      collectorStats: (m) => node()?.collectorStats(m),
    };
  }

  private onClose(): void {
    this.closed = true;
    clearTimeout(this.ackTimer);
    this.deps.stats.connections--;
    if (this.node) {
      this.deps.registry.detach(this.node, this, Date.now());
      this.deps.log.info({ peer: this.peer, node: this.node.nodeId }, 'collector disconnected');
    }
  }
}
