// Reading procfs fast. A scan reads a handful of small files per process, so each read is one
// open, read(s) into a shared buffer, close: no fstat and no buffer per file, which readFileSync
// would add (procfs reports a size of 0 anyway).

import { closeSync, openSync, readSync } from 'node:fs';

const shared = Buffer.allocUnsafe(64 * 1024);

/** Reads at most `limit` bytes (up to 64 KiB) of a file: a view of the shared buffer, valid until the next read. */
export function readSmallFile(path: string, limit = shared.length): Buffer {
  const max = Math.min(limit, shared.length);
  const fd = openSync(path, 'r');
  try {
    let length = 0;
    while (length < max) {
      const n = readSync(fd, shared, length, max - length, null);
      if (n === 0) break;
      length += n;
    }
    return shared.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** A small file as UTF-8 text. The result is a copy; the buffer behind it is reused. */
export function readSmallText(path: string, limit?: number): string {
  return readSmallFile(path, limit).toString('utf8');
}

/** The process (or the fd, or the netns file) went away between listing and reading it. */
export function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ESRCH';
}

/** Access refused: hidepid, a missing capability, or a non-dumpable process seen without root. */
export function isDenied(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'EACCES' || code === 'EPERM';
}
