// Reaching a socket another process holds, from this process: a copy of its descriptor
// (pidfd_getfd, Linux 5.6+, needs ptrace rights over the owner: root), a zero-byte peek that
// fires the socket's receive tracepoint in this thread, and the copy closed again. The peek
// neither takes data nor waits (MSG_PEEK | MSG_DONTWAIT, length 0).

import * as lib from './libbpf.js';

const MSG_PEEK = 2;
const MSG_DONTWAIT = 0x40;

/** 0 when the socket was reached, else the errno of the step that failed (ESRCH: the process is gone; EBADF: so is the descriptor). */
export function peekForeignSocket(pid: number, fd: number): number {
  const pidfd = lib.pidfd_open(pid, 0);
  if (pidfd.value < 0) return pidfd.errno;
  try {
    const copy = lib.pidfd_getfd(pidfd.value, fd, 0);
    if (copy.value < 0) return copy.errno;
    // A failed recv (EAGAIN, ENOTCONN) still ran the tracepoint: only the copy mattered.
    lib.recv(copy.value, 0, 0, MSG_PEEK | MSG_DONTWAIT);
    lib.close(copy.value);
    return 0;
  } finally {
    lib.close(pidfd.value);
  }
}
