// The dispatch floor (native/floor.bpf.c): programs with the names and hooks of bpf/'s socket
// programs that do nothing. Built with clang-16 against the vmlinux.h of bpf/.output, so that it
// is the same kernel's view as the collector's own object.

import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as kernel from '@ebpf-net/collector/kernel';

const SOURCE = fileURLToPath(new URL('../native/floor.bpf.c', import.meta.url));

/** Compiles the floor into `dir`; returns the object's path. */
export function buildFloorObject(dir: string): string {
  const object = join(dir, 'floor.bpf.o');
  execFileSync('clang-16', ['-target', 'bpf', '-O2', '-g', '-I', dirname(kernel.DEFAULT_OBJECT_PATH), '-c', SOURCE, '-o', object], { stdio: ['ignore', 'inherit', 'inherit'] });
  return object;
}
