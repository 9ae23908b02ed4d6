// The connection to the reducer: handshake, messages batched into frames (flushed when a frame
// fills or every flushIntervalMs), heartbeats when idle, and reconnection with exponential
// backoff and jitter. After every (re)connect the owner sends a full snapshot, so that a
// restarted reducer can rebuild its state.
//
// Messages are produced only while connected: while the reducer is away the trackers keep
// their state (and the kernel keeps counting), and the snapshot plus the next deltas carry
// everything once it is back. The reducer acknowledges what it applied (ack messages, the only
// ones it sends); what a broken connection left unacknowledged (in the batch, in the socket
// queues, or in a reducer that crashed), and what did not fit the bounded send queue, is
// counted, and reported as lost once connected again.

import { type Socket, connect } from 'node:net';
import type { Logger } from '@ebpf-net/common';
import { FrameEncoder, type MessageInput, type MessageName, ProtocolError, StreamDecoder } from '@ebpf-net/protocol';

export interface IntakeClientOptions {
  host: string;
  port: number;
  /** The handshake to open each connection with. */
  handshake: () => MessageInput<'handshake'>;
  /** Called once a connection is up and the handshake written: send the snapshot now. */
  onConnect: () => void;
  log: Logger;
  /** Bytes allowed to wait in the socket's send queue; past it, new frames are dropped and counted. */
  maxQueueBytes: number;
  flushIntervalMs?: number;
  heartbeatIntervalMs?: number;
  backoff?: { initialMs: number; maxMs: number };
}

export interface IntakeClientStats {
  connects: number;
  messagesSent: number;
  bytesSent: number;
  /** Messages refused by the full send queue. */
  messagesDropped: number;
  /** Messages batched or written to a connection that broke before the reducer acknowledged them. */
  messagesUnacknowledged: number;
}

const FLUSH_BYTES = 64 * 1024;

export class IntakeClient {
  readonly stats: IntakeClientStats = { connects: 0, messagesSent: 0, bytesSent: 0, messagesDropped: 0, messagesUnacknowledged: 0 };
  private readonly encoder = new FrameEncoder();
  private socket: Socket | undefined;
  private up = false;
  private stopped = false;
  private attempt = 0;
  private lastWriteMs = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private unreachableLogged = false;
  /** Messages written to this connection, and how many of them the reducer acknowledged (both reset at its close). */
  private written = 0;
  private acked = 0;

  constructor(private readonly options: IntakeClientOptions) {}

  /** True while a connection is up and its handshake sent. */
  get connected(): boolean {
    return this.up;
  }

  /** Bytes waiting: in the encoder and in the socket's send queue. */
  get queueBytes(): number {
    return this.encoder.pendingBytes + (this.socket?.writableLength ?? 0);
  }

  start(): void {
    this.connect();
    const interval = this.options.flushIntervalMs ?? 100;
    this.flushTimer = setInterval(() => this.tick(), interval);
  }

  /** Queues one message; a no-op while disconnected (the owner's snapshot covers that time). */
  send<N extends MessageName>(name: N, message: MessageInput<N>): void {
    if (!this.up) return;
    this.encoder.write(name, message);
    if (this.encoder.pendingBytes >= FLUSH_BYTES) this.flush();
  }

  /** send() for one kind of message, without its lookup by name (see FrameEncoder.writerFor). */
  sender<N extends MessageName>(name: N): (message: MessageInput<N>) => void {
    const write = this.encoder.writerFor(name);
    return (message) => {
      if (!this.up) return;
      write(message);
      if (this.encoder.pendingBytes >= FLUSH_BYTES) this.flush();
    };
  }

  /** Writes what is batched. */
  flush(): void {
    if (!this.up || this.encoder.pendingMessages === 0) return;
    const messages = this.encoder.pendingMessages;
    const bytes = this.encoder.finish();
    if (this.socket!.writableLength + bytes.length > this.options.maxQueueBytes) {
      this.stats.messagesDropped += messages;
      return;
    }
    this.socket!.write(bytes);
    this.written += messages;
    this.stats.messagesSent += messages;
    this.stats.bytesSent += bytes.length;
    this.lastWriteMs = Date.now();
  }

  /**
   * Sends what is batched, waits up to `ackWaitMs` for the reducer to acknowledge all it was
   * sent, and closes. True when it acknowledged every message of the connection.
   */
  async stop(ackWaitMs = 1000): Promise<boolean> {
    this.stopped = true;
    clearInterval(this.flushTimer);
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    // A socket that already closed (the reducer went away) emits no second 'close'.
    if (!socket || socket.destroyed) return false;
    this.flush();
    const deadline = Date.now() + ackWaitMs;
    while (this.up && this.acked < this.written && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const complete = this.up && this.acked >= this.written && this.encoder.pendingMessages === 0;
    this.up = false;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
      setTimeout(() => socket.destroy(), 2000).unref();
    });
    return complete;
  }

  private tick(): void {
    if (!this.up) return;
    if (this.encoder.pendingMessages === 0 && Date.now() - this.lastWriteMs >= (this.options.heartbeatIntervalMs ?? 5000)) {
      this.encoder.write('heartbeat', { timestampMs: Date.now() });
    }
    this.flush();
  }

  private connect(): void {
    if (this.stopped) return;
    const { host, port, log } = this.options;
    const socket = connect({ host, port, noDelay: true });
    this.socket = socket;
    socket.setKeepAlive(true, 10_000);
    socket.once('connect', () => {
      this.attempt = 0;
      this.unreachableLogged = false;
      this.stats.connects++;
      this.up = true;
      this.encoder.write('handshake', this.options.handshake());
      this.options.onConnect();
      this.flush();
      log.info({ host, port, connects: this.stats.connects }, 'connected to the reducer; snapshot sent');
    });
    const acks = new StreamDecoder({ ack: (m) => void (this.acked = m.messages) }, { expectHandshake: false });
    socket.on('data', (chunk) => {
      try {
        acks.push(chunk);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        log.warn({ host, port, code: error.code, offset: error.offset }, `the reducer sent a malformed stream (${error.message}); reconnecting`);
        socket.destroy();
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!this.up && !this.unreachableLogged) {
        this.unreachableLogged = true;
        log.warn({ host, port, code: error.code }, `the reducer at ${host}:${port} is unreachable (${error.code ?? error.message}); retrying with backoff`);
      } else if (this.up) {
        log.warn({ host, port, code: error.code }, `connection to the reducer failed: ${error.message}`);
      }
    });
    socket.once('close', () => {
      const wasUp = this.up;
      this.up = false;
      // What the reducer did not acknowledge, batched or written, is lost with the connection.
      const lost = this.encoder.pendingMessages + (this.written - this.acked);
      this.encoder.finish();
      this.written = this.acked = 0;
      this.stats.messagesUnacknowledged += lost;
      if (wasUp) log.warn({ host, port, lostMessages: lost }, 'disconnected from the reducer; reconnecting');
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const ceiling = Math.min(maxMs, initialMs * 2 ** this.attempt++);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter": spread, but never near zero
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
