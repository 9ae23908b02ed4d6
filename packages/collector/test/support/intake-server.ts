// A TEST DOUBLE of the reducer's intake, for the kernel-collector's end-to-end tests
// (test/collector-*.test.ts): a real TCP server that decodes every connection with the
// protocol's StreamDecoder (one per connection, handshake required) and records every message,
// in order, per connection. It aggregates nothing; like the reducer, it acknowledges what it
// recorded (after every chunk), never what it discarded. Tests read what the real collector
// sent and compute totals from it.
//
// stop() destroys the connections and closes the listener, as a reducer that goes away would;
// listen() on the same port brings it back. pauseReading() stalls it (it stops reading).

import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { FrameEncoder, type MessageHandlers, type MessageName, type MessageOf, StreamDecoder, messages } from '@ebpf-net/protocol';

/** One decoded message, copied (the decoder reuses its message objects). */
export interface Recorded<N extends MessageName = MessageName> {
  name: N;
  message: MessageOf<N>;
  /** Arrival time, ms since the epoch. */
  atMs: number;
  /** Position among all messages the server recorded (every connection), to order across connections. */
  seq: number;
}

/** One collector connection, as seen by the server. */
export class IntakeConnection {
  readonly messages: Recorded[] = [];
  handshake: MessageOf<'handshake'> | undefined;
  /** Set when the decoder refused the stream (the connection is then destroyed). */
  protocolError: Error | undefined;
  closed = false;
  /** Messages read by discardUnread(): received, never processed (as by a reducer that crashed). */
  readonly discarded: Recorded[] = [];
  discarding = false;
  /** socketStats sums of this connection alone, by socket id. */
  readonly totalsBySocket = new Map<number, SocketTotals>();
  /** Indexes in `messages` of the first snapshotBegin and of the snapshotEnd after it. */
  snapshotBounds: { begin: number; end: number | undefined } | undefined;

  constructor(
    readonly index: number,
    readonly socket: Socket,
  ) {}

  /** The collector session of this connection (from its handshake). */
  get sessionId(): number | undefined {
    return this.handshake?.sessionId;
  }

  /** The messages of one type, in arrival order. */
  of<N extends MessageName>(name: N): Array<MessageOf<N>> {
    return this.messages.filter((r) => r.name === name).map((r) => r.message as unknown as MessageOf<N>);
  }

  /** The messages between the first snapshotBegin and the snapshotEnd after it, when both arrived. */
  snapshot(): Recorded[] | undefined {
    const b = this.snapshotBounds;
    if (b?.end === undefined) return undefined;
    return this.messages.slice(b.begin + 1, b.end);
  }

  /** The sums of this connection's socketStats for one socket (zeros when none arrived). */
  totalsOf(socketId: number): SocketTotals {
    return { ...(this.totalsBySocket.get(socketId) ?? zeroTotals()) };
  }
}

export interface SocketTotals {
  bytesSent: number;
  bytesReceived: number;
  segmentsSent: number;
  segmentsReceived: number;
  retransmits: number;
  /** socketStats messages summed. */
  updates: number;
}

export interface UdpTotals {
  bytesSent: number;
  bytesReceived: number;
  packetsSent: number;
  packetsReceived: number;
  updates: number;
}

/** A socket of one collector session, with every message about it, from every connection of that session. */
export interface SocketView {
  sessionId: number;
  socketId: number;
  opens: Array<MessageOf<'socketOpen'>>;
  addresses: Array<MessageOf<'socketAddress'>>;
  closes: Array<MessageOf<'socketClose'>>;
  totals: SocketTotals;
}

export interface TupleQuery {
  localAddr?: string;
  localPort?: number;
  remoteAddr?: string;
  remotePort?: number;
}

/** Copies a decoded message: scalars by value, arrays and byte fields by content. */
function copyMessage<T extends object>(m: Readonly<T>): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (Array.isArray(v)) out[k] = [...v];
    else if (v instanceof Uint8Array) out[k] = Uint8Array.from(v);
    else out[k] = v;
  }
  return out as T;
}

export class TestIntakeServer {
  readonly connections: IntakeConnection[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private seq = 0;
  private listeners = new Set<() => void>();
  private notifyTimer: NodeJS.Timeout | undefined;
  private _port = 0;
  /** Per socket (`${sessionId}:${socketId}`): every message about it, from every connection. */
  private readonly views = new Map<string, SocketView>();
  /** socketAddress 4-tuple → the sockets it was said of. */
  private readonly byTuple = new Map<string, Set<string>>();
  /** socketAddress local address and port → the sockets it was said of. */
  private readonly byLocal = new Map<string, Set<string>>();
  /** udpStats sums by `${sessionId}:${socketId}|${remoteAddr}|${remotePort}`. */
  private readonly udp = new Map<string, UdpTotals>();

  /** A server listening on 127.0.0.1:`port` (0: any free port). */
  static async start(port = 0): Promise<TestIntakeServer> {
    const s = new TestIntakeServer();
    await s.listen(port);
    return s;
  }

  get port(): number {
    return this._port;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Listens (again) on 127.0.0.1; by default on the port it had before. */
  async listen(port = this._port): Promise<void> {
    if (this.server) throw new Error('the test intake server is already listening');
    const server = createServer((socket) => {
      // A connection that arrives while stop() runs is refused: close() would wait for it.
      if (this.server !== server) socket.destroy();
      else this.accept(socket);
    });
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      this.server = undefined;
      throw error;
    }
    this._port = (server.address() as AddressInfo).port;
  }

  /** Goes away like a reducer that stopped: every connection destroyed, the listener closed. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Stops reading every open connection, as a stalled reducer would: what the collector writes
   * then waits in the kernel's buffers (and is discarded if stop() follows).
   */
  pauseReading(): void {
    for (const s of this.sockets) s.pause();
  }

  /**
   * Reads, for `ms`, what waits on every open connection, recording it in `discarded` instead of
   * `messages`: after pauseReading(), this counts what a reducer that crashed would have lost.
   */
  async discardUnread(ms: number): Promise<void> {
    for (const conn of this.connections) if (!conn.closed) conn.discarding = true;
    for (const s of this.sockets) s.resume();
    await new Promise((r) => setTimeout(r, ms));
  }

  private accept(socket: Socket): void {
    const conn = new IntakeConnection(this.connections.length, socket);
    this.connections.push(conn);
    this.sockets.add(socket);
    const handlers: Record<string, (m: object) => void> = {};
    for (const spec of messages) {
      const name = spec.name;
      handlers[name] = (m: object) => {
        const message = copyMessage(m);
        if (name === 'handshake') conn.handshake = message as MessageOf<'handshake'>;
        const r: Recorded = { name, message: message as MessageOf<typeof name>, atMs: Date.now(), seq: this.seq++ };
        if (conn.discarding) {
          conn.discarded.push(r);
          return;
        }
        conn.messages.push(r);
        if (name === 'snapshotBegin' && conn.snapshotBounds === undefined) conn.snapshotBounds = { begin: conn.messages.length - 1, end: undefined };
        if (name === 'snapshotEnd' && conn.snapshotBounds && conn.snapshotBounds.end === undefined) conn.snapshotBounds.end = conn.messages.length - 1;
        this.index(conn, r);
      };
    }
    const decoder = new StreamDecoder(handlers as MessageHandlers, { expectHandshake: true });
    const acks = new FrameEncoder();
    let acked = 0;
    socket.on('data', (chunk: Buffer) => {
      if (conn.protocolError) return;
      try {
        decoder.push(chunk);
      } catch (error) {
        conn.protocolError = error as Error;
        socket.destroy();
      }
      if (!socket.destroyed && conn.messages.length > acked) {
        acked = conn.messages.length;
        acks.write('ack', { messages: acked });
        socket.write(acks.finish());
      }
      this.notify();
    });
    socket.on('error', () => {}); // a collector going away is what some tests do
    socket.once('close', () => {
      conn.closed = true;
      this.sockets.delete(socket);
      this.notify();
    });
    this.notify();
  }

  /** Runs the waiting checks, at most every 20 ms (a busy collector sends many chunks). */
  private notify(): void {
    if (this.notifyTimer) return;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      const waiting = [...this.listeners];
      this.listeners.clear();
      for (const l of waiting) l();
    }, 20);
  }

  /**
   * Resolves with the first truthy value of `predicate`, checked now and after every chunk or
   * connection change (and every 100 ms); rejects after `timeoutMs`, naming `what`.
   */
  waitFor<T>(predicate: () => T | undefined | null | false, timeoutMs = 10_000, what = 'a condition'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let finished = false;
      const check = (): void => {
        if (finished) return;
        let value: T | undefined | null | false;
        try {
          value = predicate();
        } catch (error) {
          finish();
          reject(error as Error);
          return;
        }
        if (value) {
          finish();
          resolve(value);
        } else {
          this.listeners.add(check);
        }
      };
      const poll = setInterval(check, 100);
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`the test intake server waited ${timeoutMs} ms for ${what}; ${this.describe()}`));
      }, timeoutMs);
      const finish = (): void => {
        finished = true;
        clearInterval(poll);
        clearTimeout(timer);
      };
      check();
    });
  }

  /** The first connection after the first `after` ones whose snapshot arrived whole. */
  waitForSnapshot(after = 0, timeoutMs = 20_000): Promise<IntakeConnection> {
    return this.waitFor(() => this.connections.slice(after).find((c) => c.snapshot() !== undefined), timeoutMs, `a snapshot on a connection after the first ${after}`);
  }

  /** A short account of what arrived, for failure messages. */
  describe(): string {
    const parts = this.connections.map((c) => {
      const counts = new Map<string, number>();
      for (const r of c.messages) counts.set(r.name, (counts.get(r.name) ?? 0) + 1);
      return `#${c.index} session ${c.sessionId ?? '?'}${c.closed ? ' (closed)' : ''}${c.protocolError ? ` protocol error: ${c.protocolError.message}` : ''}: ${[...counts].map(([n, k]) => `${n}×${k}`).join(' ')}`;
    });
    return `${this.connections.length} connection(s)${parts.length ? ': ' + parts.join('; ') : ''}`;
  }

  /** Every message of one type from every connection, in arrival order, with its connection. */
  all<N extends MessageName>(name: N): Array<{ conn: IntakeConnection; message: MessageOf<N> }> {
    const out: Array<{ conn: IntakeConnection; message: MessageOf<N>; seq: number }> = [];
    for (const conn of this.connections) {
      for (const r of conn.messages) if (r.name === name) out.push({ conn, message: r.message as unknown as MessageOf<N>, seq: r.seq });
    }
    return out.sort((a, b) => a.seq - b.seq).map(({ conn, message }) => ({ conn, message }));
  }

  /** The connections with a handshake, in order. */
  handshakes(): Array<MessageOf<'handshake'>> {
    return this.connections.flatMap((c) => (c.handshake ? [c.handshake] : []));
  }

  /** Per-socket sums of socketStats deltas, keyed by `${sessionId}:${socketId}`, over every connection. */
  socketTotals(): Map<string, SocketTotals> {
    const out = new Map<string, SocketTotals>();
    for (const [key, v] of this.views) if (v.totals.updates > 0) out.set(key, { ...v.totals });
    return out;
  }

  /** Per (socket, remote) sums of udpStats deltas, keyed by `${sessionId}:${socketId}|${remoteAddr}|${remotePort}`. */
  udpTotals(): Map<string, UdpTotals> {
    return new Map([...this.udp].map(([k, v]) => [k, { ...v }]));
  }

  /** The udpStats sums of one socket towards one remote (zeros when none arrived). */
  udpTotalsOf(view: { sessionId: number; socketId: number }, remoteAddr: string, remotePort: number): UdpTotals {
    const t = this.udp.get(`${socketKey(view.sessionId, view.socketId)}|${remoteAddr}|${remotePort}`);
    return t ? { ...t } : { bytesSent: 0, bytesReceived: 0, packetsSent: 0, packetsReceived: 0, updates: 0 };
  }

  /** Every socket some socketAddress of which matches `query`, with all that was said about it (every connection of its session). */
  findSockets(query: TupleQuery, protocol?: number): SocketView[] {
    let keys: Iterable<string>;
    if (query.localAddr !== undefined && query.localPort !== undefined && query.remoteAddr !== undefined && query.remotePort !== undefined) {
      keys = this.byTuple.get(tupleKey(query.localAddr, query.localPort, query.remoteAddr, query.remotePort)) ?? [];
    } else if (query.localAddr !== undefined && query.localPort !== undefined) {
      keys = [...(this.byLocal.get(`${query.localAddr}|${query.localPort}`) ?? [])].filter((k) => this.views.get(k)!.addresses.some((a) => matches(a, query)));
    } else {
      keys = [...this.views].filter(([, v]) => v.addresses.some((a) => matches(a, query))).map(([k]) => k);
    }
    const out: SocketView[] = [];
    for (const k of keys) {
      const v = this.views.get(k)!;
      if (protocol === undefined || v.opens.some((o) => o.protocol === protocol)) out.push(cloneView(v));
    }
    return out;
  }

  /** The one socket matching `query` (undefined while none, an error when several). */
  findSocket(query: TupleQuery, protocol?: number): SocketView | undefined {
    const found = this.findSockets(query, protocol);
    if (found.length > 1) throw new Error(`${found.length} sockets match ${JSON.stringify(query)}: ${found.map((f) => `${f.sessionId}:${f.socketId}`).join(', ')}`);
    return found[0];
  }

  /** Keeps the per-socket views and the UDP totals up to date, message by message. */
  private index(conn: IntakeConnection, r: Recorded): void {
    const session = conn.sessionId;
    if (session === undefined) return;
    const m = r.message as { socketId?: number };
    if (m.socketId === undefined) return;
    const key = socketKey(session, m.socketId);
    let v = this.views.get(key);
    if (!v) {
      v = { sessionId: session, socketId: m.socketId, opens: [], addresses: [], closes: [], totals: zeroTotals() };
      this.views.set(key, v);
    }
    switch (r.name) {
      case 'socketOpen':
        v.opens.push(r.message as MessageOf<'socketOpen'>);
        break;
      case 'socketAddress': {
        const a = r.message as MessageOf<'socketAddress'>;
        v.addresses.push(a);
        for (const [index, k] of [
          [this.byTuple, tupleKey(a.localAddr, a.localPort, a.remoteAddr, a.remotePort)],
          [this.byLocal, `${a.localAddr}|${a.localPort}`],
        ] as const) {
          const set = index.get(k) ?? new Set<string>();
          set.add(key);
          index.set(k, set);
        }
        break;
      }
      case 'socketClose':
        v.closes.push(r.message as MessageOf<'socketClose'>);
        break;
      case 'socketStats': {
        const s = r.message as MessageOf<'socketStats'>;
        addStats(v.totals, s);
        const c = conn.totalsBySocket.get(s.socketId) ?? zeroTotals();
        addStats(c, s);
        conn.totalsBySocket.set(s.socketId, c);
        break;
      }
      case 'udpStats': {
        const u = r.message as MessageOf<'udpStats'>;
        const k = `${key}|${u.remoteAddr}|${u.remotePort}`;
        const t = this.udp.get(k) ?? { bytesSent: 0, bytesReceived: 0, packetsSent: 0, packetsReceived: 0, updates: 0 };
        t.bytesSent += u.bytesSent;
        t.bytesReceived += u.bytesReceived;
        t.packetsSent += u.packetsSent;
        t.packetsReceived += u.packetsReceived;
        t.updates++;
        this.udp.set(k, t);
        break;
      }
      default:
        break;
    }
  }
}

function zeroTotals(): SocketTotals {
  return { bytesSent: 0, bytesReceived: 0, segmentsSent: 0, segmentsReceived: 0, retransmits: 0, updates: 0 };
}

function addStats(t: SocketTotals, s: MessageOf<'socketStats'>): void {
  t.bytesSent += s.bytesSent;
  t.bytesReceived += s.bytesReceived;
  t.segmentsSent += s.segmentsSent;
  t.segmentsReceived += s.segmentsReceived;
  t.retransmits += s.retransmits;
  t.updates++;
}

function tupleKey(localAddr: string, localPort: number, remoteAddr: string, remotePort: number): string {
  return `${localAddr}|${localPort}|${remoteAddr}|${remotePort}`;
}

function cloneView(v: SocketView): SocketView {
  return { ...v, opens: [...v.opens], addresses: [...v.addresses], closes: [...v.closes], totals: { ...v.totals } };
}

export function socketKey(sessionId: number, socketId: number): string {
  return `${sessionId}:${socketId}`;
}

function matches(a: MessageOf<'socketAddress'>, q: TupleQuery): boolean {
  return (
    (q.localAddr === undefined || a.localAddr === q.localAddr) &&
    (q.localPort === undefined || a.localPort === q.localPort) &&
    (q.remoteAddr === undefined || a.remoteAddr === q.remoteAddr) &&
    (q.remotePort === undefined || a.remotePort === q.remotePort)
  );
}
