// The TCP and UDP sockets that were open before the collector started, in every network
// namespace, each with the process that holds it and a guess at its role.

import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { AddressFamily, SocketProtocol } from '@ebpf-net/protocol';
import { KernelRole } from '../kernel/abi.js';
import type { HostPaths } from './host-paths.js';
import type { ProcessRecord } from './processes.js';
import { isDenied, isGone } from './proc-files.js';
import { type AddressFamilyValue, type SocketProtocolValue, type SocketTableEntry, TcpState, parseSocketTable } from './socket-table.js';

/** The kernel side's roles (bpf/ebpf_net.h), so that scanned and traced sockets compare. */
export type SocketRole = (typeof KernelRole)[keyof typeof KernelRole];

export interface SocketRecord extends SocketTableEntry {
  /** Inode of the network namespace the socket lives in. */
  netns: number;
  /** The process holding the socket (the eldest, when a fork shared it); 0 when none was seen. */
  pid: number;
  /** A descriptor of the socket in that process; -1 when none was seen. */
  fd: number;
  role: SocketRole;
}

/** Who holds a socket: a process, and the descriptor number there. */
export interface SocketOwner {
  pid: number;
  fd: number;
}

const TABLES: readonly { file: string; protocol: SocketProtocolValue; family: AddressFamilyValue }[] = [
  { file: 'tcp', protocol: SocketProtocol.TCP, family: AddressFamily.INET },
  { file: 'tcp6', protocol: SocketProtocol.TCP, family: AddressFamily.INET6 },
  { file: 'udp', protocol: SocketProtocol.UDP, family: AddressFamily.INET },
  { file: 'udp6', protocol: SocketProtocol.UDP, family: AddressFamily.INET6 },
];

/**
 * Every open TCP and UDP socket of the network namespaces that `processes` live in. Each
 * namespace's tables are read once, through one of its processes.
 */
export function scanSockets(paths: HostPaths, processes: readonly ProcessRecord[]): SocketRecord[] {
  const pidsByNetns = new Map<number, number[]>();
  for (const p of processes) {
    if (p.netns === 0) continue;
    const pids = pidsByNetns.get(p.netns);
    if (pids === undefined) pidsByNetns.set(p.netns, [p.pid]);
    else pids.push(p.pid);
  }
  const tables = new Map<number, SocketTableEntry[]>();
  for (const [netns, pids] of pidsByNetns) {
    const entries = readNetnsTables(paths.proc, pids);
    if (entries !== undefined) tables.set(netns, entries);
  }
  // After the tables: a socket opened meanwhile has an owner but no entry, and is simply not listed.
  const owners = socketOwners(paths.proc, processes);
  const records: SocketRecord[] = [];
  for (const [netns, entries] of tables) {
    const roleOf = roleGuesser(entries);
    for (const e of entries) {
      const owner = owners.get(e.inode);
      records.push({
        protocol: e.protocol,
        family: e.family,
        localAddr: e.localAddr,
        localPort: e.localPort,
        remoteAddr: e.remoteAddr,
        remotePort: e.remotePort,
        state: e.state,
        uid: e.uid,
        inode: e.inode,
        netns,
        pid: owner?.pid ?? 0,
        fd: owner?.fd ?? -1,
        role: roleOf(e),
      });
    }
  }
  return records;
}

/** The four tables of one namespace, through the first of `pids` that is still alive. */
function readNetnsTables(proc: string, pids: readonly number[]): SocketTableEntry[] | undefined {
  for (const pid of pids) {
    const dir = `${proc}/${pid}/net`;
    const texts = TABLES.map((t) => readTable(`${dir}/${t.file}`));
    // A missing tcp6 or udp6 means IPv6 is off, unless the process itself went away meanwhile.
    if (texts[0] === undefined || !existsSync(`${proc}/${pid}`)) continue;
    return TABLES.flatMap((t, i) => {
      const text = texts[i];
      return text === undefined ? [] : parseSocketTable(text, t.protocol, t.family);
    });
  }
  return undefined;
}

function readTable(path: string): string | undefined {
  try {
    // These can be megabytes on a busy host: readFileSync reads procfs files to the end.
    return readFileSync(path, 'latin1');
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
}

/** Socket inode → owner, from the "socket:[N]" links in /proc/<pid>/fd. */
export function socketOwners(proc: string, processes: readonly ProcessRecord[]): Map<number, SocketOwner> {
  const ppidOf = new Map<number, number>();
  for (const p of processes) ppidOf.set(p.pid, p.ppid);
  const owners = new Map<number, SocketOwner>();
  for (const p of processes) {
    const dir = `${proc}/${p.pid}/fd`;
    let fds: string[];
    try {
      fds = readdirSync(dir);
    } catch (err) {
      if (isGone(err) || isDenied(err)) continue;
      throw err;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`${dir}/${fd}`);
      } catch (err) {
        if (isGone(err)) continue; // closed meanwhile
        if (isDenied(err)) break; // no ptrace access to this process: none of its links will do
        throw err;
      }
      if (!link.startsWith('socket:[')) continue;
      const inode = Number(link.slice(8, -1));
      const held = owners.get(inode);
      // A socket shared across fork() (a server's listener and its workers) goes to the parent.
      if (held === undefined || ppidOf.get(held.pid) === p.pid) owners.set(inode, { pid: p.pid, fd: Number(fd) });
    }
  }
  return owners;
}

/**
 * Roles from what the tables show. A TCP socket whose local port a listener of the same namespace
 * holds was accepted: server; any other connection is a client (connect() never picks a port a
 * listener holds). A connected UDP socket sharing its port with an unconnected one is a server's
 * per-peer socket (QUIC servers do this); other connected ones are clients. An unconnected UDP
 * socket may serve or send (sendto()): unknown.
 */
function roleGuesser(entries: readonly SocketTableEntry[]): (e: SocketTableEntry) => SocketRole {
  const tcpListening = new Set<number>();
  const udpUnconnected = new Set<number>();
  for (const e of entries) {
    if (e.protocol === SocketProtocol.TCP && e.state === TcpState.LISTEN) tcpListening.add(e.localPort);
    if (e.protocol === SocketProtocol.UDP && e.remotePort === 0) udpUnconnected.add(e.localPort);
  }
  return (e) => {
    if (e.protocol === SocketProtocol.UDP) {
      if (e.remotePort === 0) return KernelRole.UNKNOWN;
      return udpUnconnected.has(e.localPort) ? KernelRole.SERVER : KernelRole.CLIENT;
    }
    switch (e.state) {
      case TcpState.LISTEN:
        return KernelRole.LISTENER;
      case TcpState.SYN_SENT:
        return KernelRole.CLIENT;
      case TcpState.CLOSE: // bound, or shut, and not connected
        return KernelRole.UNKNOWN;
      default:
        return tcpListening.has(e.localPort) ? KernelRole.SERVER : KernelRole.CLIENT;
    }
  };
}
