// Attaching one program, and what its outcome means.
//
// Tracepoints, raw tracepoints and the other section types libbpf knows attach with
// bpf_program__attach (libbpf reads the target from the SEC() name). Cgroup programs
// (cgroup_skb, sock_ops, cgroup sock_addr, ...) attach to a cgroup fd, here the cgroup v2 root,
// through a BPF link. Each program is attached on its own: one missing tracepoint is reported,
// not fatal.

import { ENOENT, ENOSYS, ENOTSUPP, EOPNOTSUPP, errnoName } from './errno.js';
import * as lib from './libbpf.js';
import type { Ptr } from './libbpf.js';

export type AttachStatus = 'attached' | 'unsupported' | 'failed';

export interface AttachResult {
  /** The C function name of the program. */
  name: string;
  /** Its SEC() name, e.g. 'tracepoint/sock/inet_sock_set_state'. */
  section: string;
  status: AttachStatus;
  /** Why it is not attached ('' when it is): libbpf's last message or the errno's text. */
  reason: string;
  /** Positive errno when it is not attached, else 0. */
  errno: number;
}

export const ProgramType = {
  SOCKET_FILTER: 1,
  KPROBE: 2,
  SCHED_CLS: 3,
  TRACEPOINT: 5,
  XDP: 6,
  PERF_EVENT: 7,
  CGROUP_SKB: 8,
  CGROUP_SOCK: 9,
  SOCK_OPS: 13,
  CGROUP_DEVICE: 15,
  RAW_TRACEPOINT: 17,
  CGROUP_SOCK_ADDR: 18,
  CGROUP_SYSCTL: 23,
  CGROUP_SOCKOPT: 25,
  TRACING: 26,
  LSM: 29,
} as const;

const CGROUP_TYPES = new Set<number>([
  ProgramType.CGROUP_SKB,
  ProgramType.CGROUP_SOCK,
  ProgramType.SOCK_OPS,
  ProgramType.CGROUP_DEVICE,
  ProgramType.CGROUP_SOCK_ADDR,
  ProgramType.CGROUP_SYSCTL,
  ProgramType.CGROUP_SOCKOPT,
]);

// The kernel lacks the target (tracepoint, raw tracepoint, kprobe support, attach type), as
// opposed to a failure worth alarming about.
const UNSUPPORTED = new Set<number>([ENOENT, EOPNOTSUPP, ENOTSUPP, ENOSYS]);

export function isCgroupProgram(type: number): boolean {
  return CGROUP_TYPES.has(type);
}

export interface ProgramAttachment {
  result: AttachResult;
  /** struct bpf_link *, 0 unless attached. */
  link: Ptr;
}

/**
 * Attaches `program` (a struct bpf_program *). `cgroupFd` is called only for cgroup programs; it
 * throws when there is no cgroup v2 hierarchy. `messages` is where libbpf's messages of this
 * attempt land (libbpf-log.ts sink).
 */
export async function attachProgram(
  program: Ptr,
  name: string,
  section: string,
  type: number,
  cgroupFd: () => number,
  messages: () => string[],
): Promise<ProgramAttachment> {
  const base = { name, section };
  let r: lib.ErrnoResult<Ptr>;
  if (isCgroupProgram(type)) {
    let fd: number;
    try {
      fd = cgroupFd();
    } catch (error) {
      return { link: 0, result: { ...base, status: 'unsupported', reason: (error as Error).message, errno: 0 } };
    }
    r = await lib.bpf_program__attach_cgroup(program, fd);
  } else {
    r = await lib.bpf_program__attach(program);
  }
  if (r.value) return { link: r.value, result: { ...base, status: 'attached', reason: '', errno: 0 } };
  const errno = r.errno;
  const said = messages();
  const reason = said.length ? said[said.length - 1]! : `${errnoName(errno)}: ${strerror(errno)}`;
  return { link: 0, result: { ...base, status: UNSUPPORTED.has(errno) ? 'unsupported' : 'failed', reason, errno } };
}

/** libbpf's text for an errno, its own codes (4000+) included. */
export function strerror(errno: number): string {
  const buf = Buffer.alloc(256);
  if (lib.libbpf_strerror(errno, buf, buf.length) < 0) return errnoName(errno);
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}
