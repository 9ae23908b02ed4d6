// A synthetic collector: speaks the wire protocol to a reducer over real TCP, sending whatever
// messages a test or a benchmark composes. Not a fake of the reducer's side: the reducer under
// test is real; only the kernel is left out.

import { type Socket, connect } from 'node:net';
import { FrameEncoder, MAGIC, type MessageInput, type MessageName, PROTOCOL_VERSION, SocketProtocol, SocketRole, StreamDecoder } from '@ebpf-net/protocol';

export interface SyntheticCollectorOptions {
  host?: string;
  port: number;
  nodeId: string;
  hostname?: string;
  sessionId?: number;
}

export interface TcpEndSpec {
  socketId: number;
  pid: number;
  local: string;
  localPort: number;
  remote: string;
  remotePort: number;
  role: 'client' | 'server';
  flags?: number;
}

export class SyntheticCollector {
  readonly encoder = new FrameEncoder();
  private socket: Socket | undefined;
  private closedPromise: Promise<void> | undefined;
  /** Messages the reducer acknowledged on this connection (its latest ack). */
  acked = 0;

  constructor(readonly options: SyntheticCollectorOptions) {}

  /** Connects and sends the handshake. */
  async connect(): Promise<void> {
    const socket = connect({ host: this.options.host ?? '127.0.0.1', port: this.options.port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => {}); // the reducer may close us on purpose; tests look at the close
    const acks = new StreamDecoder({ ack: (m) => void (this.acked = m.messages) }, { expectHandshake: false });
    socket.on('data', (chunk) => acks.push(chunk)); // also lets the socket end
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    this.socket = socket;
    this.send('handshake', {
      magic: MAGIC,
      protocolVersion: PROTOCOL_VERSION,
      bootTimeMs: 0,
      sessionId: this.options.sessionId ?? 1,
      collectorVersion: 'synthetic',
      nodeId: this.options.nodeId,
      hostname: this.options.hostname ?? this.options.nodeId,
      kernelRelease: 'synthetic',
      probes: [],
    });
    await this.flush();
  }

  send<N extends MessageName>(name: N, message: MessageInput<N>): void {
    this.encoder.write(name, message);
  }

  /** A process, then a TCP socket with its addresses. */
  openTcp(end: TcpEndSpec, comm = `proc${end.pid}`): void {
    this.send('processStart', { pid: end.pid, ppid: 1, cgroupId: 0, startTimeNs: 0, flags: 0, comm, cmdline: comm });
    this.send('socketOpen', { socketId: end.socketId, pid: end.pid, protocol: SocketProtocol.TCP, family: 2, flags: end.flags ?? 0 });
    this.send('socketAddress', {
      socketId: end.socketId,
      localAddr: end.local,
      remoteAddr: end.remote,
      localPort: end.localPort,
      remotePort: end.remotePort,
      role: end.role === 'client' ? SocketRole.CLIENT : SocketRole.SERVER,
    });
  }

  stats(socketId: number, bytesSent: number, bytesReceived: number, srttUs = 0): void {
    this.send('socketStats', { socketId, bytesSent, bytesReceived, segmentsSent: 1, segmentsReceived: 1, retransmits: 0, srttUs });
  }

  /** Writes what was composed; resolves once the socket has taken it. */
  flush(): Promise<void> {
    return this.writeRaw(this.encoder.finish());
  }

  writeRaw(bytes: Uint8Array): Promise<void> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => socket.write(bytes, (error) => (error ? reject(error) : resolve())));
  }

  /** Resolves when the reducer (or we) closed the connection. */
  closed(): Promise<void> {
    return this.closedPromise ?? Promise.resolve();
  }

  async close(): Promise<void> {
    this.socket?.end();
    await this.closed();
  }

  destroy(): void {
    this.socket?.destroy();
  }
}
