// The processes that existed before the collector started, read from /proc. The kernel reports
// those that come later (exec, fork, exit); this scan fills in the rest with the same fields.

import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { clockTicksPerSecond } from './clock-ticks.js';
import type { HostPaths } from './host-paths.js';
import { isDenied, isGone, readSmallFile, readSmallText } from './proc-files.js';

/** Longest command line kept, in bytes (the kernel's own is unbounded). */
export const CMDLINE_MAX_BYTES = 4096;

export interface ProcessRecord {
  /** Process id (thread group id). */
  pid: number;
  ppid: number;
  /** Real uid, as bpf_get_current_uid_gid() reports it. */
  uid: number;
  comm: string;
  /** Arguments separated by spaces, at most CMDLINE_MAX_BYTES; '' for kernel threads. */
  cmdline: string;
  /**
   * Start time, ns since boot, at /proc's resolution of one clock tick (10 ms at 100 Hz). The
   * kernel's task->start_time is monotonic while /proc counts boot time: they differ by the time
   * the machine spent suspended, so match the two within a tick, not exactly.
   */
  startTimeNs: number;
  /** Path in the cgroup v2 hierarchy (the "0::" line), '' when there is none (a pure v1 host). */
  cgroupPath: string;
  /**
   * The longest path in the v1 hierarchies, '' on a pure v2 host. On hybrid hosts some runtimes
   * (docker with the cgroupfs driver) place containers only there.
   */
  cgroupV1Path: string;
  /** Inode of the cgroup v2 directory, which is bpf_get_current_cgroup_id(); 0 when unknown. */
  cgroupId: number;
  /** Inode of the network namespace (bpf: task->nsproxy->net_ns->ns.inum); 0 when unknown. */
  netns: number;
}

/** Every process in the host's /proc; those that exit during the scan are left out. */
export function scanProcesses(paths: HostPaths): ProcessRecord[] {
  // Most processes share a few cgroups: stat each directory once per scan.
  const cgroupIds = new Map<string, number>();
  const records: ProcessRecord[] = [];
  for (const pid of listPids(paths.proc)) {
    const record = readProcess(paths, pid, cgroupIds);
    if (record !== undefined) records.push(record);
  }
  return records;
}

/** The pids in /proc: processes only, as threads are not listed there (only reachable by tid). */
export function listPids(proc: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync(proc)) {
    const c = name.charCodeAt(0);
    if (c >= 48 && c <= 57 && /^\d+$/.test(name)) pids.push(Number(name));
  }
  return pids;
}

/**
 * One process; undefined when it is gone (or a zombie: exited, its namespaces already released).
 * `cgroupIds` (cgroup path → inode) is shared by the reads of one scan.
 */
export function readProcess(paths: HostPaths, pid: number, cgroupIds = new Map<string, number>()): ProcessRecord | undefined {
  const dir = `${paths.proc}/${pid}`;
  try {
    const stat = parseStat(readSmallText(`${dir}/stat`));
    const uid = parseRealUid(readSmallText(`${dir}/status`));
    const cmdline = formatCmdline(readSmallFile(`${dir}/cmdline`, CMDLINE_MAX_BYTES));
    const cgroups = parseCgroupFile(readSmallText(`${dir}/cgroup`));
    const netns = readNsInode(`${dir}/ns/net`);
    return {
      pid,
      ppid: stat.ppid,
      uid,
      comm: stat.comm,
      cmdline,
      startTimeNs: Math.round(stat.startTicks * (1e9 / clockTicksPerSecond())),
      cgroupPath: cgroups.v2,
      cgroupV1Path: cgroups.v1,
      cgroupId: cgroupInode(paths.cgroupRoot, cgroups.v2, cgroupIds),
      netns,
    };
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
}

export interface StatFields {
  comm: string;
  ppid: number;
  /** Field 22, starttime: clock ticks since boot. */
  startTicks: number;
}

/** /proc/<pid>/stat. The comm is in parentheses and may itself hold spaces and parentheses. */
export function parseStat(text: string): StatFields {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  // After the comm: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  // utime stime cutime cstime priority nice num_threads itrealvalue starttime ...
  const rest = text.slice(close + 2).split(' ');
  return { comm: text.slice(open + 1, close), ppid: Number(rest[1]), startTicks: Number(rest[19]) };
}

/** The real uid: the first of the four numbers on the Uid: line of /proc/<pid>/status. */
export function parseRealUid(status: string): number {
  const at = status.indexOf('\nUid:');
  if (at < 0) return 0;
  return parseInt(status.slice(at + 5).trimStart(), 10);
}

/** NUL-separated arguments to one line; a final NUL (or one cut by the length bound) leaves no trailing space. */
export function formatCmdline(raw: Buffer): string {
  let end = raw.length;
  while (end > 0 && raw[end - 1] === 0) end--;
  return raw.toString('utf8', 0, end).replace(/\0/g, ' ');
}

export interface CgroupPaths {
  v2: string;
  v1: string;
}

/** /proc/<pid>/cgroup: "0::<path>" for v2, "<id>:<controllers>:<path>" for each v1 hierarchy. */
export function parseCgroupFile(text: string): CgroupPaths {
  let v2 = '';
  let v1 = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('0::')) {
      v2 = line.slice(3);
      continue;
    }
    const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
    if (line !== '' && path.length > v1.length) v1 = path;
  }
  return { v2, v1 };
}

/** The number in a namespace link, "net:[4026531840]"; 0 when we may not look (no ptrace access). */
function readNsInode(link: string): number {
  let target: string;
  try {
    target = readlinkSync(link);
  } catch (err) {
    if (isDenied(err)) return 0;
    throw err;
  }
  return parseNsLink(target);
}

/** "net:[4026531840]" → 4026531840; 0 for anything else. */
export function parseNsLink(target: string): number {
  const open = target.indexOf(':[');
  if (open < 0 || !target.endsWith(']')) return 0;
  const n = Number(target.slice(open + 2, -1));
  return Number.isInteger(n) ? n : 0;
}

function cgroupInode(cgroupRoot: string, path: string, cache: Map<string, number>): number {
  if (path === '') return 0;
  let ino = cache.get(path);
  if (ino === undefined) {
    try {
      ino = statSync(cgroupRoot + path).ino;
    } catch {
      // Removed since, or outside our cgroup namespace ("/../.."): unknown.
      ino = 0;
    }
    cache.set(path, ino);
  }
  return ino;
}
