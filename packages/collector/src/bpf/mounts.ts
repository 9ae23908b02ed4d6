// The pseudo-filesystems BPF needs: bpffs at /sys/fs/bpf (pinning, bpftool) and tracefs at
// /sys/kernel/tracing (libbpf resolves tracepoint ids there), both sometimes unmounted at boot;
// and the cgroup v2 hierarchy that cgroup programs attach to.

import { existsSync, readFileSync } from 'node:fs';
import { EPERM } from './errno.js';
import { BpfCallError, BpfNotPermittedError } from './errors.js';
import * as lib from './libbpf.js';

export const BPFFS_PATH = '/sys/fs/bpf';
export const TRACEFS_PATH = '/sys/kernel/tracing';

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
}

export type MountStatus = 'present' | 'mounted';

export interface BpfMountsReport {
  bpffs: MountStatus;
  tracefs: MountStatus;
}

/** Mounts bpffs and tracefs where they are missing; says which it had to mount. */
export function ensureBpfMounts(): BpfMountsReport {
  return {
    bpffs: ensureMount('bpf', BPFFS_PATH, 'bpf'),
    tracefs: ensureMount('tracefs', TRACEFS_PATH, 'tracefs'),
  };
}

/** Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
export function cgroup2Root(): string | undefined {
  const mounts = readMounts().filter((m) => m.fstype === 'cgroup2');
  // Prefer the shortest path: the host's hierarchy, not a bind mount of a sub-tree.
  mounts.sort((a, b) => a.target.length - b.target.length);
  return mounts[0]?.target;
}

/** /proc/self/mounts, with its octal escapes (\040 for a space) decoded. */
export function readMounts(): MountEntry[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [source = '', target = '', fstype = ''] = line.split(' ').map(unescapeMount);
      return { source, target, fstype };
    });
}

function ensureMount(source: string, target: string, fstype: string): MountStatus {
  if (readMounts().some((m) => m.target === target && m.fstype === fstype)) return 'present';
  if (!existsSync(target)) throw new BpfCallError(`mount ${fstype} on ${target}`, 2, 'the mount point does not exist');
  const r = lib.mount(source, target, fstype, 0, 0);
  if (r.value !== 0) {
    if (r.errno === EPERM) throw new BpfNotPermittedError(`mount ${fstype} on ${target}`, r.errno);
    throw new BpfCallError(`mount ${fstype} on ${target}`, r.errno);
  }
  return 'mounted';
}

function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
