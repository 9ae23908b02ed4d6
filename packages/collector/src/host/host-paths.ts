// Where the host's files are. On the host itself they are where they always are; in a container,
// the host's / is mounted at EBPF_NET_HOST_DIR (default /hostfs) and every path goes through it.

import { existsSync, readFileSync } from 'node:fs';
import { HostDirMissingError } from './errors.js';

export const HOST_DIR_ENV = 'EBPF_NET_HOST_DIR';
export const DEFAULT_HOST_DIR = '/hostfs';

export interface HostPaths {
  /** Prefix of every host path: '' on the host, the host directory in a container. */
  root: string;
  /** The host's procfs (its pid namespace). */
  proc: string;
  /** Mount point of the cgroup v2 hierarchy; cgroup paths of /proc/<pid>/cgroup are relative to it. */
  cgroupRoot: string;
  etc: string;
  /** Docker's data root: containers/<id>/config.v2.json. */
  docker: string;
  /** containerd's state: io.containerd.runtime.v2.task/<namespace>/<id>/config.json. */
  containerdState: string;
  /** containers/storage (cri-o, podman) run root and graph root: overlay-containers/<id>/userdata. */
  containersRunRoot: string;
  containersGraphRoot: string;
}

/**
 * Resolves the host paths. `hostDir` defaults to $EBPF_NET_HOST_DIR, then to /hostfs when that
 * exists. '' means the host itself (no prefix); any other directory named must exist
 * (HostDirMissingError), as reading the container's own /proc instead would be silently wrong.
 */
export function resolveHostPaths(hostDir?: string): HostPaths {
  const named = hostDir ?? process.env[HOST_DIR_ENV];
  let root = '';
  if (named === undefined) {
    if (existsSync(DEFAULT_HOST_DIR)) root = DEFAULT_HOST_DIR;
  } else if (named !== '') {
    if (!existsSync(named)) throw new HostDirMissingError(named);
    root = named.replace(/\/+$/, '');
  }
  const proc = `${root}/proc`;
  return {
    root,
    proc,
    cgroupRoot: findCgroup2Root(root, proc),
    etc: `${root}/etc`,
    docker: `${root}/var/lib/docker`,
    containerdState: `${root}/run/containerd`,
    containersRunRoot: `${root}/run/containers/storage`,
    containersGraphRoot: `${root}/var/lib/containers/storage`,
  };
}

/**
 * The cgroup2 mount: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid ones.
 * Through a host directory only init's mount table shows the host's view (ours would list the
 * container's mounts); on the host, ours does, and init's is the fallback. Else /sys/fs/cgroup.
 */
function findCgroup2Root(root: string, proc: string): string {
  const tables = root === '' ? [`${proc}/self/mounts`, `${proc}/1/mounts`] : [`${proc}/1/mounts`];
  for (const table of tables) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    const target = cgroup2MountPoint(text);
    if (target !== undefined) return `${root}${target}`;
  }
  return `${root}/sys/fs/cgroup`;
}

/** The shortest cgroup2 mount point in a mount table: the hierarchy's root, not a bind of a sub-tree. */
export function cgroup2MountPoint(mountTable: string): string | undefined {
  let best: string | undefined;
  for (const line of mountTable.split('\n')) {
    const fields = line.split(' ');
    if (fields[2] !== 'cgroup2' || fields[1] === undefined) continue;
    const target = unescapeMountField(fields[1]);
    if (best === undefined || target.length < best.length) best = target;
  }
  return best;
}

/** Mount tables escape space, tab, newline and backslash as \ooo. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
