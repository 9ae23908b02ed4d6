// Parses the kernel's records into typed objects. Lifecycle events are rare next to the
// counters (which stay in maps), so an object per event is fine here.

import { formatIp } from '@ebpf-net/protocol';
import { EventType, PROC_EVENT, SOCK_EVENT, SOCK_INFO } from './abi.js';

export interface SockInfo {
  socketId: number;
  startNs: number;
  lastUpdateNs: number;
  closeNs: number;
  bytesSent: number;
  bytesReceived: number;
  sendCalls: number;
  recvCalls: number;
  pid: number;
  netns: number;
  segsOut: number;
  segsIn: number;
  retransmits: number;
  resetsSent: number;
  resetsReceived: number;
  srttUs: number;
  sndCwnd: number;
  flags: number;
  family: number;
  protocol: number;
  localPort: number;
  remotePort: number;
  localAddr: string;
  remoteAddr: string;
  state: number;
  role: number;
  closeOldState: number;
  cause: number;
  skErr: number;
}

export interface SocketEvent {
  kind: 'socket';
  type: number;
  oldState: number;
  newState: number;
  cause: number;
  tsNs: number;
  info: SockInfo;
}

export interface ProcessEvent {
  kind: 'process';
  type: number;
  pid: number;
  ppid: number;
  uid: number;
  tsNs: number;
  startNs: number;
  cgroupId: number;
  exitCode: number;
  netns: number;
  flags: number;
  comm: string;
  filename: string;
}

export type KernelEvent = SocketEvent | ProcessEvent;

export function readU64(b: Buffer, at: number): number {
  return b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 4294967296;
}

/** A NUL-terminated C string in a fixed-size field. */
function readCString(b: Buffer, at: number, length: number): string {
  let end = b.indexOf(0, at);
  if (end < 0 || end > at + length) end = at + length;
  return b.toString('utf8', at, end);
}

export function readSockInfo(b: Buffer, at: number): SockInfo {
  const I = SOCK_INFO;
  return {
    socketId: readU64(b, at + I.socketId),
    startNs: readU64(b, at + I.startNs),
    lastUpdateNs: readU64(b, at + I.lastUpdateNs),
    closeNs: readU64(b, at + I.closeNs),
    bytesSent: readU64(b, at + I.bytesSent),
    bytesReceived: readU64(b, at + I.bytesReceived),
    sendCalls: readU64(b, at + I.sendCalls),
    recvCalls: readU64(b, at + I.recvCalls),
    pid: b.readUInt32LE(at + I.pid),
    netns: b.readUInt32LE(at + I.netns),
    segsOut: b.readUInt32LE(at + I.segsOut),
    segsIn: b.readUInt32LE(at + I.segsIn),
    retransmits: b.readUInt32LE(at + I.retransmits),
    resetsSent: b.readUInt32LE(at + I.resetsSent),
    resetsReceived: b.readUInt32LE(at + I.resetsReceived),
    srttUs: b.readUInt32LE(at + I.srttUs),
    sndCwnd: b.readUInt32LE(at + I.sndCwnd),
    flags: b.readUInt32LE(at + I.flags),
    family: b.readUInt16LE(at + I.family),
    protocol: b.readUInt16LE(at + I.protocol),
    localPort: b.readUInt16LE(at + I.sport),
    remotePort: b.readUInt16LE(at + I.dport),
    localAddr: formatIp(b, at + I.saddr),
    remoteAddr: formatIp(b, at + I.daddr),
    state: b[at + I.state]!,
    role: b[at + I.role]!,
    closeOldState: b[at + I.closeOldState]!,
    cause: b[at + I.cause]!,
    skErr: b.readUInt16LE(at + I.skErr),
  };
}

/** Parses one ring record; undefined for a record of a type or size this collector does not know. */
export function readEvent(b: Buffer, at: number, length: number): KernelEvent | undefined {
  if (length < 4) return undefined;
  const type = b.readUInt32LE(at);
  if (type >= EventType.PROC_EXEC && type <= EventType.PROC_EXIT) {
    if (length < PROC_EVENT.size) return undefined;
    const P = PROC_EVENT;
    return {
      kind: 'process',
      type,
      pid: b.readUInt32LE(at + P.pid),
      ppid: b.readUInt32LE(at + P.ppid),
      uid: b.readUInt32LE(at + P.uid),
      tsNs: readU64(b, at + P.tsNs),
      startNs: readU64(b, at + P.startNs),
      cgroupId: readU64(b, at + P.cgroupId),
      exitCode: b.readInt32LE(at + P.exitCode),
      netns: b.readUInt32LE(at + P.netns),
      flags: b.readUInt32LE(at + P.flags),
      comm: readCString(b, at + P.comm, P.commLength),
      filename: type === EventType.PROC_EXEC ? readCString(b, at + P.filename, P.filenameLength) : '',
    };
  }
  if (type >= EventType.TCP_CONNECT && type <= EventType.SOCK_PID) {
    if (length < SOCK_EVENT.size) return undefined;
    return {
      kind: 'socket',
      type,
      oldState: b[at + SOCK_EVENT.oldState]!,
      newState: b[at + SOCK_EVENT.newState]!,
      cause: b[at + SOCK_EVENT.cause]!,
      tsNs: readU64(b, at + SOCK_EVENT.tsNs),
      info: readSockInfo(b, at + SOCK_EVENT.info),
    };
  }
  return undefined;
}
