// errno numbers to names. libbpf 1.x returns negative errno values (and sets errno for calls
// that return pointers); callers act on the name, people read the message.

import { constants } from 'node:os';

const NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  // Linux has aliases (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK): keep the first, usual name.
  if (!NAMES.has(value)) NAMES.set(value, name);
}
// Kernel-internal codes that leak out of bpf(2) and are absent from libc's table.
NAMES.set(524, 'ENOTSUPP');

export const EPERM = constants.errno.EPERM;
export const ENOENT = constants.errno.ENOENT;
export const ESRCH = constants.errno.ESRCH;
export const E2BIG = constants.errno.E2BIG;
export const EBADF = constants.errno.EBADF;
export const EACCES = constants.errno.EACCES;
export const EINVAL = constants.errno.EINVAL;
export const ENOSPC = constants.errno.ENOSPC;
export const ENOSYS = constants.errno.ENOSYS;
export const EOPNOTSUPP = constants.errno.EOPNOTSUPP;
export const ENOTSUPP = 524;

/** 'ENOENT' for 2 or -2; 'E4007' style for codes no table knows (libbpf's own are 4000+). */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return NAMES.get(n) ?? `E${n}`;
}
