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

// Buffer's read methods check their arguments on every call; DataView reads are inlined by
// V8. A view is kept for the last buffer seen: the ring and each batch reader reuse theirs.
let lastBuffer: Buffer | undefined;
let lastView: DataView | undefined;
function viewOf(b: Buffer): DataView {
  if (b !== lastBuffer) {
    lastBuffer = b;
    lastView = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  return lastView!;
}

export function readU64(b: Buffer, at: number): number {
  const v = viewOf(b);
  return v.getUint32(at, true) + v.getUint32(at + 4, true) * 4294967296;
}

function u64(v: DataView, at: number): number {
  return v.getUint32(at, true) + v.getUint32(at + 4, true) * 4294967296;
}

/** A NUL-terminated C string in a fixed-size field. */
function readCString(b: Buffer, at: number, length: number): string {
  let end = b.indexOf(0, at);
  if (end < 0 || end > at + length) end = at + length;
  return b.toString('utf8', at, end);
}

export function readSockInfo(b: Buffer, at: number): SockInfo {
  const I = SOCK_INFO;
  const v = viewOf(b);
  return {
    socketId: u64(v, at + I.socketId),
    startNs: u64(v, at + I.startNs),
    lastUpdateNs: u64(v, at + I.lastUpdateNs),
    closeNs: u64(v, at + I.closeNs),
    bytesSent: u64(v, at + I.bytesSent),
    bytesReceived: u64(v, at + I.bytesReceived),
    sendCalls: u64(v, at + I.sendCalls),
    recvCalls: u64(v, at + I.recvCalls),
    pid: v.getUint32(at + I.pid, true),
    netns: v.getUint32(at + I.netns, true),
    segsOut: v.getUint32(at + I.segsOut, true),
    segsIn: v.getUint32(at + I.segsIn, true),
    retransmits: v.getUint32(at + I.retransmits, true),
    resetsSent: v.getUint32(at + I.resetsSent, true),
    resetsReceived: v.getUint32(at + I.resetsReceived, true),
    srttUs: v.getUint32(at + I.srttUs, true),
    sndCwnd: v.getUint32(at + I.sndCwnd, true),
    flags: v.getUint32(at + I.flags, true),
    family: v.getUint16(at + I.family, true),
    protocol: v.getUint16(at + I.protocol, true),
    localPort: v.getUint16(at + I.sport, true),
    remotePort: v.getUint16(at + I.dport, true),
    localAddr: formatIp(b, at + I.saddr),
    remoteAddr: formatIp(b, at + I.daddr),
    state: b[at + I.state]!,
    role: b[at + I.role]!,
    closeOldState: b[at + I.closeOldState]!,
    cause: b[at + I.cause]!,
    skErr: v.getUint16(at + I.skErr, true),
  };
}

/** Parses one ring record; undefined for a record of a type or size this collector does not know. */
export function readEvent(b: Buffer, at: number, length: number): KernelEvent | undefined {
  if (length < 4) return undefined;
  const v = viewOf(b);
  const type = v.getUint32(at, true);
  if (type >= EventType.PROC_EXEC && type <= EventType.PROC_EXIT) {
    if (length < PROC_EVENT.size) return undefined;
    const P = PROC_EVENT;
    return {
      kind: 'process',
      type,
      pid: v.getUint32(at + P.pid, true),
      ppid: v.getUint32(at + P.ppid, true),
      uid: v.getUint32(at + P.uid, true),
      tsNs: u64(v, at + P.tsNs),
      startNs: u64(v, at + P.startNs),
      cgroupId: u64(v, at + P.cgroupId),
      exitCode: v.getInt32(at + P.exitCode, true),
      netns: v.getUint32(at + P.netns, true),
      flags: v.getUint32(at + P.flags, true),
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
      tsNs: u64(v, at + SOCK_EVENT.tsNs),
      info: readSockInfo(b, at + SOCK_EVENT.info),
    };
  }
  return undefined;
}
