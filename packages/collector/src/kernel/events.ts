// Parses the kernel's records into typed objects. Socket events and map entries come at tens of
// thousands a second under connection churn, so their objects are reused: what readEvent and
// readSockets hand out is valid during the callback only (measured: allocating one per record
// made garbage collection the collector's largest cost). copy() keeps one. Process events are
// rarer and get objects of their own.

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
  /** Formatted when read. */
  readonly localAddr: string;
  readonly remoteAddr: string;
  state: number;
  role: number;
  closeOldState: number;
  cause: number;
  skErr: number;
  /** The 16-byte addresses, local (l0-l3) and remote (r0-r3), as signed little-endian 32-bit words. */
  readonly l0: number;
  readonly l1: number;
  readonly l2: number;
  readonly l3: number;
  readonly r0: number;
  readonly r1: number;
  readonly r2: number;
  readonly r3: number;
  /** A copy that stays valid after the callback. */
  copy(): SockInfo;
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

/** The third word of an IPv4-mapped address (::ffff:a.b.c.d), bytes 00 00 ff ff, signed. */
const IPV4_MAPPED = 0xffff0000 | 0;
/** Scratch for formatting an IPv6 address kept as four words. */
const scratch = new Uint8Array(16);
const scratchView = new DataView(scratch.buffer);

/**
 * The 16 address bytes, kept as four signed little-endian words until asked for as text:
 * formatting costs a string per address, and most events never need it (measured: half the
 * collector's CPU under connection churn was allocation, most of it here).
 */
function formatWords(w0: number, w1: number, w2: number, w3: number): string {
  if (w0 === 0 && w1 === 0 && w2 === IPV4_MAPPED) return `${w3 & 0xff}.${(w3 >>> 8) & 0xff}.${(w3 >>> 16) & 0xff}.${w3 >>> 24}`;
  scratchView.setInt32(0, w0, true);
  scratchView.setInt32(4, w1, true);
  scratchView.setInt32(8, w2, true);
  scratchView.setInt32(12, w3, true);
  return formatIp(scratch, 0);
}

class KernelSockInfo implements SockInfo {
  socketId = 0;
  startNs = 0;
  lastUpdateNs = 0;
  closeNs = 0;
  bytesSent = 0;
  bytesReceived = 0;
  sendCalls = 0;
  recvCalls = 0;
  pid = 0;
  netns = 0;
  segsOut = 0;
  segsIn = 0;
  retransmits = 0;
  resetsSent = 0;
  resetsReceived = 0;
  srttUs = 0;
  sndCwnd = 0;
  flags = 0;
  family = 0;
  protocol = 0;
  localPort = 0;
  remotePort = 0;
  state = 0;
  role = 0;
  closeOldState = 0;
  cause = 0;
  skErr = 0;
  l0 = 0;
  l1 = 0;
  l2 = 0;
  l3 = 0;
  r0 = 0;
  r1 = 0;
  r2 = 0;
  r3 = 0;

  get localAddr(): string {
    return formatWords(this.l0, this.l1, this.l2, this.l3);
  }

  get remoteAddr(): string {
    return formatWords(this.r0, this.r1, this.r2, this.r3);
  }

  copy(): SockInfo {
    return Object.assign(new KernelSockInfo(), this);
  }
}

/** A reader that parses every record into the same object: valid until the next read. */
export function sockInfoReader(): (b: Buffer, at: number) => SockInfo {
  const reused = new KernelSockInfo();
  return (b, at) => readSockInfoInto(reused, b, at);
}

function readSockInfoInto(o: KernelSockInfo, b: Buffer, at: number): KernelSockInfo {
  const I = SOCK_INFO;
  const v = viewOf(b);
  o.socketId = u64(v, at + I.socketId);
  o.startNs = u64(v, at + I.startNs);
  o.lastUpdateNs = u64(v, at + I.lastUpdateNs);
  o.closeNs = u64(v, at + I.closeNs);
  o.bytesSent = u64(v, at + I.bytesSent);
  o.bytesReceived = u64(v, at + I.bytesReceived);
  o.sendCalls = u64(v, at + I.sendCalls);
  o.recvCalls = u64(v, at + I.recvCalls);
  o.pid = v.getUint32(at + I.pid, true);
  o.netns = v.getUint32(at + I.netns, true);
  o.segsOut = v.getUint32(at + I.segsOut, true);
  o.segsIn = v.getUint32(at + I.segsIn, true);
  o.retransmits = v.getUint32(at + I.retransmits, true);
  o.resetsSent = v.getUint32(at + I.resetsSent, true);
  o.resetsReceived = v.getUint32(at + I.resetsReceived, true);
  o.srttUs = v.getUint32(at + I.srttUs, true);
  o.sndCwnd = v.getUint32(at + I.sndCwnd, true);
  o.flags = v.getUint32(at + I.flags, true);
  o.family = v.getUint16(at + I.family, true);
  o.protocol = v.getUint16(at + I.protocol, true);
  o.localPort = v.getUint16(at + I.sport, true);
  o.remotePort = v.getUint16(at + I.dport, true);
  o.l0 = v.getInt32(at + I.saddr, true);
  o.l1 = v.getInt32(at + I.saddr + 4, true);
  o.l2 = v.getInt32(at + I.saddr + 8, true);
  o.l3 = v.getInt32(at + I.saddr + 12, true);
  o.r0 = v.getInt32(at + I.daddr, true);
  o.r1 = v.getInt32(at + I.daddr + 4, true);
  o.r2 = v.getInt32(at + I.daddr + 8, true);
  o.r3 = v.getInt32(at + I.daddr + 12, true);
  o.state = b[at + I.state]!;
  o.role = b[at + I.role]!;
  o.closeOldState = b[at + I.closeOldState]!;
  o.cause = b[at + I.cause]!;
  o.skErr = v.getUint16(at + I.skErr, true);
  return o;
}

const socketEventInfo = new KernelSockInfo();
const socketEvent: SocketEvent = { kind: 'socket', type: 0, oldState: 0, newState: 0, cause: 0, tsNs: 0, info: socketEventInfo };

/** A copy of an event that stays valid after the callback. */
export function copyEvent(e: KernelEvent): KernelEvent {
  return e.kind === 'socket' ? { ...e, info: e.info.copy() } : e;
}

/**
 * Parses one ring record; undefined for a record of a type or size this collector does not know.
 * A socket event (and its info) is reused by the next call: copyEvent() keeps one.
 */
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
  if (type >= EventType.TCP_LISTEN && type <= EventType.SOCK_PID) {
    if (length < SOCK_EVENT.size) return undefined;
    const e = socketEvent;
    e.type = type;
    e.oldState = b[at + SOCK_EVENT.oldState]!;
    e.newState = b[at + SOCK_EVENT.newState]!;
    e.cause = b[at + SOCK_EVENT.cause]!;
    e.tsNs = u64(v, at + SOCK_EVENT.tsNs);
    readSockInfoInto(socketEventInfo, b, at + SOCK_EVENT.info);
    return e;
  }
  return undefined;
}
