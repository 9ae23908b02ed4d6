// The intake: a TCP server that takes any number of collectors at once, each with its own
// decoder, and closes connections that stay silent past the heartbeat timeout.

import { type Server, type Socket, createServer } from 'node:net';
import { type Logger, UserError } from '@ebpf-net/common';
import type { NodeRegistry } from '../state/registry.js';
import { CollectorConnection } from './connection.js';
import { type IntakeStats, newIntakeStats } from './stats.js';

export interface IntakeOptions {
  host: string;
  port: number;
  /** A connection that sends nothing (not even a heartbeat) for this long is closed. */
  heartbeatTimeoutMs: number;
  maxFrameBytes: number;
}

export class IntakeServer {
  readonly stats: IntakeStats = newIntakeStats();
  private readonly server: Server;
  private readonly connections = new Set<CollectorConnection>();
  private readonly sockets = new Set<Socket>();
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: NodeRegistry,
    private readonly options: IntakeOptions,
    private readonly log: Logger,
  ) {
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** Starts listening; resolves with the bound port. A port in use is a UserError. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') reject(new UserError(`intake port ${this.options.port} is in use; stop what holds it or choose another with --port`));
        else if (error.code === 'EACCES') reject(new UserError(`not allowed to listen on intake port ${this.options.port}; choose a port above 1023 or run as root`));
        else reject(error);
      };
      this.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        const port = typeof address === 'object' && address ? address.port : this.options.port;
        this.heartbeatTimer = setInterval(() => this.closeSilent(), Math.max(100, this.options.heartbeatTimeoutMs / 4));
        this.heartbeatTimer.unref();
        this.log.info({ host: this.options.host, port }, 'intake listening for collectors');
        resolve(port);
      });
    });
  }

  private accept(socket: Socket): void {
    this.stats.accepted++;
    this.stats.connections++;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    const connection = new CollectorConnection(socket, { registry: this.registry, stats: this.stats, log: this.log, maxFrameBytes: this.options.maxFrameBytes });
    this.connections.add(connection);
    socket.on('close', () => this.connections.delete(connection));
  }

  private closeSilent(): void {
    const now = Date.now();
    for (const c of this.connections) {
      if (now - c.lastDataMs > this.options.heartbeatTimeoutMs) {
        this.stats.heartbeatTimeouts++;
        c.close(`no data or heartbeat for ${Math.round((now - c.lastDataMs) / 1000)} s`);
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    // The last acks first, so that the collectors count nothing this reducer applied as lost.
    for (const c of this.connections) c.acknowledge();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
