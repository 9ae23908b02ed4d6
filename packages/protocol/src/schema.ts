// The wire schema: the one source of truth for every message between collector and reducer.
// Encoders, decoders, TypeScript types and docs/protocol.md are all derived from this table.
//
// Rules for changing it:
// - Never reuse or renumber an id.
// - A new message takes a free id: older peers skip it (its length is on the wire) and count it.
// - Adding, removing or retyping a field of an existing message bumps PROTOCOL_VERSION.
//   (Decoders ignore bytes past the fields they know, but require all of those.)

import type { FieldType } from './field-types.js';

/** "EBNT" read as a little-endian u32: the first field of every handshake. */
export const MAGIC = 0x544e4245;
/**
 * Peers speak only to peers of the same protocol version.
 * 2: the reducer acknowledges what it applied (ack), and the collector counts what a broken
 *    connection left unacknowledged (LossCause.CONNECTION_LOST).
 */
export const PROTOCOL_VERSION = 2;

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  readonly doc: string;
}

export interface MessageSpec {
  readonly id: number;
  readonly name: string;
  readonly doc: string;
  readonly fields: readonly FieldSpec[];
}

type Field<N extends string, T extends FieldType> = { readonly name: N; readonly type: T; readonly doc: string };
const f = <N extends string, T extends FieldType>(name: N, type: T, doc: string): Field<N, T> => ({ name, type, doc });

// Enumerations carried in u8/u16 fields.

export const SocketProtocol = { TCP: 6, UDP: 17 } as const;
export const AddressFamily = { INET: 2, INET6: 10 } as const;

export const SocketRole = { UNKNOWN: 0, CLIENT: 1, SERVER: 2 } as const;

/** Bit flags on processStart and socketOpen. */
export const EntityFlags = {
  /** Existed before the collector started (found by the /proc scan, not by an event). */
  PREEXISTING: 1,
  /** Sent as part of a snapshot after a reconnect. */
  SNAPSHOT: 2,
} as const;

export const CloseCause = {
  NORMAL: 0,
  /** The peer reset the connection after it was established. */
  RESET_RECEIVED: 1,
  /** This end sent a reset. */
  RESET_SENT: 2,
  /** connect() sent SYNs and never got an answer. */
  SYN_TIMEOUT: 3,
  /** connect() was answered with a reset (nothing listening). */
  REFUSED: 4,
} as const;

export const LossCause = {
  /** The BPF ring buffer was full; lifecycle events were lost in the kernel. */
  RING_BUFFER_FULL: 1,
  /** A BPF socket-counter map was full; a socket went uncounted. */
  SOCKET_MAP_FULL: 2,
  /** A BPF process map was full. */
  PROCESS_MAP_FULL: 3,
  /** The collector's send buffer overflowed while the reducer was unreachable. */
  SEND_BUFFER_FULL: 4,
  /** A collector-side table (sockets, processes) hit its limit. */
  COLLECTOR_TABLE_FULL: 5,
  /**
   * Messages written (or batched) to a reducer connection that broke before the reducer
   * acknowledged them: lost with a crashed reducer, or applied in its last ack interval.
   */
  CONNECTION_LOST: 6,
  /** UDP counters of a socket the collector had no entry for (its open event was lost). */
  UNKNOWN_UDP_SOCKET: 7,
} as const;

export const ContainerRuntime = { UNKNOWN: 0, DOCKER: 1, CONTAINERD: 2, CRIO: 3, PODMAN: 4, SYSTEMD: 5, HOST: 6 } as const;

/** Id ranges kept free for messages that come later. */
export const RESERVED_IDS = [
  { from: 64, to: 95, purpose: 'DNS: queries, answers and learned names' },
  { from: 96, to: 127, purpose: 'HTTP: requests, responses and latencies' },
] as const;

export const messages = [
  {
    id: 1,
    name: 'handshake',
    doc: 'First message of every connection, collector to reducer. The stream decoder rejects a stream that does not start with it, or whose magic or version differ.',
    fields: [
      f('magic', 'u32', 'Always MAGIC (0x544e4245, "EBNT").'),
      f('protocolVersion', 'u16', 'PROTOCOL_VERSION of the sender.'),
      f('bootTimeMs', 'u64', 'Wall-clock time of the node\'s boot, ms since the Unix epoch; converts kernel timestamps (ns since boot).'),
      f('sessionId', 'u64', 'Random per collector process; a new value tells the reducer that the collector restarted.'),
      f('collectorVersion', 'string', 'Version of the kernel-collector.'),
      f('nodeId', 'string', 'Stable identity of the node (machine id).'),
      f('hostname', 'string', 'Host name of the node.'),
      f('kernelRelease', 'string', 'uname -r of the node.'),
      f('probes', 'strings', 'Names of the BPF programs that attached.'),
    ],
  },
  {
    id: 2,
    name: 'heartbeat',
    doc: 'Sent when a connection has been idle; lets the reducer close dead connections.',
    fields: [f('timestampMs', 'u64', 'Collector wall clock, ms since the Unix epoch.')],
  },
  {
    id: 5,
    name: 'ack',
    doc: 'Reducer to collector, the only message in that direction: how many messages of this connection the reducer has applied, the handshake included. Sent at most every 100 ms while messages arrive, and before the reducer closes a connection itself. What a broken connection leaves unacknowledged, the collector reports as lost (CONNECTION_LOST).',
    fields: [f('messages', 'u64', 'Messages applied since the connection opened.')],
  },
  {
    id: 3,
    name: 'snapshotBegin',
    doc: 'Starts a full snapshot of live processes, containers and sockets (sent after every (re)connect).',
    fields: [f('timestampMs', 'u64', 'Collector wall clock, ms since the Unix epoch.')],
  },
  {
    id: 4,
    name: 'snapshotEnd',
    doc: 'Ends the snapshot: entities not reported since snapshotBegin are gone.',
    fields: [f('timestampMs', 'u64', 'Collector wall clock, ms since the Unix epoch.')],
  },
  {
    id: 10,
    name: 'processStart',
    doc: 'A process exists: forked, exec\'d, or found at startup.',
    fields: [
      f('pid', 'u32', 'Process id (thread group id).'),
      f('ppid', 'u32', 'Parent process id.'),
      f('cgroupId', 'u64', 'Id of the process\'s cgroup v2 (its inode number).'),
      f('startTimeNs', 'u64', 'Process start, ns since boot.'),
      f('flags', 'u8', 'EntityFlags.'),
      f('comm', 'string', 'Command name, at most 16 bytes.'),
      f('cmdline', 'string', 'Command line, arguments separated by spaces; may be empty.'),
    ],
  },
  {
    id: 11,
    name: 'processExit',
    doc: 'A process exited.',
    fields: [
      f('pid', 'u32', 'Process id.'),
      f('exitCode', 'i32', 'Exit status as the kernel reports it.'),
      f('timestampNs', 'u64', 'Exit time, ns since boot.'),
    ],
  },
  {
    id: 12,
    name: 'processCommChange',
    doc: 'A process changed its command name (exec or prctl).',
    fields: [f('pid', 'u32', 'Process id.'), f('comm', 'string', 'New command name.')],
  },
  {
    id: 13,
    name: 'containerInfo',
    doc: 'What is known of the container behind a cgroup.',
    fields: [
      f('cgroupId', 'u64', 'Id of the cgroup.'),
      f('runtime', 'u8', 'ContainerRuntime.'),
      f('containerId', 'string', 'Full container id, or the systemd unit for a host service.'),
      f('name', 'string', 'Container name.'),
      f('image', 'string', 'Image reference.'),
      f('podName', 'string', 'Kubernetes pod name, or empty.'),
      f('podNamespace', 'string', 'Kubernetes namespace, or empty.'),
      f('podUid', 'string', 'Kubernetes pod uid, or empty.'),
      f('cgroupPath', 'string', 'Path of the cgroup under the cgroup root.'),
    ],
  },
  {
    id: 20,
    name: 'socketOpen',
    doc: 'A socket appeared. Its id is assigned by the collector and unique for the collector\'s session.',
    fields: [
      f('socketId', 'u64', 'Collector-assigned socket id.'),
      f('pid', 'u32', 'Owning process, or 0 when unknown.'),
      f('protocol', 'u8', 'SocketProtocol.'),
      f('family', 'u8', 'AddressFamily.'),
      f('flags', 'u8', 'EntityFlags.'),
    ],
  },
  {
    id: 21,
    name: 'socketAddress',
    doc: 'The addresses and role of a socket, once known (connect, accept, or first datagram).',
    fields: [
      f('socketId', 'u64', 'Collector-assigned socket id.'),
      f('localAddr', 'ip', 'Local address.'),
      f('remoteAddr', 'ip', 'Remote address.'),
      f('localPort', 'u16', 'Local port.'),
      f('remotePort', 'u16', 'Remote port.'),
      f('role', 'u8', 'SocketRole.'),
    ],
  },
  {
    id: 22,
    name: 'socketStats',
    doc: 'What a TCP socket did since its last update (deltas), both directions in one message. Sent only for sockets that changed.',
    fields: [
      f('socketId', 'u64', 'Collector-assigned socket id.'),
      f('bytesSent', 'u64', 'Bytes sent.'),
      f('bytesReceived', 'u64', 'Bytes received.'),
      f('segmentsSent', 'u32', 'Segments sent.'),
      f('segmentsReceived', 'u32', 'Segments received.'),
      f('retransmits', 'u32', 'Segments retransmitted.'),
      f('srttUs', 'u32', 'Smoothed round-trip time now, microseconds (a gauge, not a delta); 0 when unknown.'),
    ],
  },
  {
    id: 23,
    name: 'socketClose',
    doc: 'A socket closed. Its final socketStats precede this message.',
    fields: [
      f('socketId', 'u64', 'Collector-assigned socket id.'),
      f('cause', 'u8', 'CloseCause.'),
    ],
  },
  {
    id: 24,
    name: 'udpStats',
    doc: 'What a UDP socket exchanged with one remote address since its last update (deltas).',
    fields: [
      f('socketId', 'u64', 'Collector-assigned socket id.'),
      f('remoteAddr', 'ip', 'The remote address of these datagrams.'),
      f('bytesSent', 'u64', 'Bytes sent.'),
      f('bytesReceived', 'u64', 'Bytes received.'),
      f('packetsSent', 'u32', 'Datagrams sent.'),
      f('packetsReceived', 'u32', 'Datagrams received.'),
      f('remotePort', 'u16', 'The remote port of these datagrams.'),
    ],
  },
  {
    id: 40,
    name: 'lostEvents',
    doc: 'Events or entities lost since the last report, by cause. Nothing is dropped silently.',
    fields: [f('cause', 'u16', 'LossCause.'), f('count', 'u64', 'How many were lost since the last report.')],
  },
  {
    id: 41,
    name: 'collectorStats',
    doc: 'The collector\'s own health, sent periodically. Totals since the collector started.',
    fields: [
      f('uptimeMs', 'u64', 'Time since the collector started.'),
      f('cpuUserUs', 'u64', 'User CPU time consumed.'),
      f('cpuSystemUs', 'u64', 'System CPU time consumed.'),
      f('rssBytes', 'u64', 'Resident memory now.'),
      f('eventsReceived', 'u64', 'Kernel events drained from the ring buffer.'),
      f('messagesSent', 'u64', 'Messages sent to reducers.'),
      f('bytesSent', 'u64', 'Bytes sent to reducers.'),
      f('queueBytes', 'u32', 'Bytes waiting to be sent now.'),
    ],
  },
] as const satisfies readonly MessageSpec[];

export type Schema = typeof messages;
export type AnyMessageSpec = Schema[number];
export type MessageName = AnyMessageSpec['name'];
export type MessageSpecOf<N extends MessageName> = Extract<AnyMessageSpec, { name: N }>;
