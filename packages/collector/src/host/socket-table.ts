// The kernel's socket tables, /proc/<pid>/net/{tcp,tcp6,udp,udp6}, one socket per line:
//
//   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ...
//    0: 0100007F:9FE3 0100007F:AA54 01 00000000:00000000 00:00000000 00000000     0        0 28117 ...
//
// Addresses are the raw in-memory words printed as hex: an IPv4 address is one little-endian u32,
// an IPv6 address four of them. Ports are plain hex.

import { AddressFamily, SocketProtocol, formatIp } from '@ebpf-net/protocol';

/** The kernel's TCP states (include/net/tcp_states.h). UDP uses ESTABLISHED when connected, CLOSE otherwise. */
export const TcpState = {
  ESTABLISHED: 1,
  SYN_SENT: 2,
  SYN_RECV: 3,
  FIN_WAIT1: 4,
  FIN_WAIT2: 5,
  TIME_WAIT: 6,
  CLOSE: 7,
  CLOSE_WAIT: 8,
  LAST_ACK: 9,
  LISTEN: 10,
  CLOSING: 11,
  NEW_SYN_RECV: 12,
} as const;

export type SocketProtocolValue = (typeof SocketProtocol)[keyof typeof SocketProtocol];
export type AddressFamilyValue = (typeof AddressFamily)[keyof typeof AddressFamily];

export interface SocketTableEntry {
  protocol: SocketProtocolValue;
  /** The socket's family: INET6 also for IPv4 peers of a dual-stack socket (written ::ffff:a.b.c.d). */
  family: AddressFamilyValue;
  /** Canonical text: dotted quad for IPv4 and IPv4-mapped IPv6, RFC 5952 otherwise. */
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
  state: number;
  uid: number;
  inode: number;
}

/**
 * Parses one table. Leaves out what no process holds: TIME_WAIT and request sockets, which have
 * no inode (0).
 */
export function parseSocketTable(text: string, protocol: SocketProtocolValue, family: AddressFamilyValue): SocketTableEntry[] {
  const entries: SocketTableEntry[] = [];
  // Hosts have few distinct addresses and many sockets: format each once.
  const addresses = new Map<string, string>();
  const address = (hex: string): string => {
    let text = addresses.get(hex);
    if (text === undefined) {
      text = hex.length === 8 ? formatIpv4Hex(hex) : formatIpv6Hex(hex);
      addresses.set(hex, text);
    }
    return text;
  };
  let from = text.indexOf('\n') + 1; // past the header
  while (from > 0 && from < text.length) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = text.length;
    const fields = text.slice(from, to).trim().split(/\s+/);
    from = to + 1;
    if (fields.length < 10) continue;
    const state = parseInt(fields[3]!, 16);
    const inode = Number(fields[9]);
    if (inode === 0 || (protocol === SocketProtocol.TCP && state === TcpState.TIME_WAIT)) continue;
    const local = fields[1]!;
    const remote = fields[2]!;
    const localColon = local.indexOf(':');
    const remoteColon = remote.indexOf(':');
    entries.push({
      protocol,
      family,
      localAddr: address(local.slice(0, localColon)),
      localPort: parseInt(local.slice(localColon + 1), 16),
      remoteAddr: address(remote.slice(0, remoteColon)),
      remotePort: parseInt(remote.slice(remoteColon + 1), 16),
      state,
      uid: Number(fields[7]),
      inode,
    });
  }
  return entries;
}

/** "0100007F" (the u32 0x0100007f as the kernel holds 127.0.0.1 in memory) → "127.0.0.1". */
export function formatIpv4Hex(hex: string): string {
  const n = parseInt(hex, 16);
  return `${n & 0xff}.${(n >>> 8) & 0xff}.${(n >>> 16) & 0xff}.${n >>> 24}`;
}

/** 32 hex digits, four little-endian u32 words → canonical IPv6 text (dotted quad when IPv4-mapped). */
export function formatIpv6Hex(hex: string): string {
  const bytes = new Uint8Array(16);
  for (let word = 0; word < 4; word++) {
    for (let b = 0; b < 4; b++) {
      const at = word * 8 + (3 - b) * 2;
      bytes[word * 4 + b] = parseInt(hex.slice(at, at + 2), 16);
    }
  }
  return formatIp(bytes, 0);
}
