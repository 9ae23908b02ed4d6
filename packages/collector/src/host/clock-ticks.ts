// /proc/<pid>/stat counts times in clock ticks (USER_HZ, what sysconf(_SC_CLK_TCK) returns).
// Node cannot call sysconf, but the kernel hands the value to every process in its auxiliary
// vector (AT_CLKTCK), which /proc/self/auxv shows. USER_HZ is 100 on every common architecture,
// the fallback when auxv cannot be read.

import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';

const AT_NULL = 0;
const AT_CLKTCK = 17;
const DEFAULT_TICKS = 100;

let cached: number | undefined;

/** Clock ticks per second of /proc's time fields. */
export function clockTicksPerSecond(): number {
  cached ??= readClockTicks();
  return cached;
}

function readClockTicks(): number {
  let auxv: Buffer;
  try {
    auxv = readFileSync('/proc/self/auxv');
  } catch {
    return DEFAULT_TICKS;
  }
  // (type, value) pairs of native words, ended by AT_NULL.
  const word = process.arch === 'arm' || process.arch === 'ia32' ? 4 : 8;
  const le = endianness() === 'LE';
  const read = (at: number): number =>
    word === 4 ? (le ? auxv.readUInt32LE(at) : auxv.readUInt32BE(at)) : Number(le ? auxv.readBigUInt64LE(at) : auxv.readBigUInt64BE(at));
  for (let at = 0; at + 2 * word <= auxv.length; at += 2 * word) {
    const type = read(at);
    if (type === AT_NULL) break;
    if (type === AT_CLKTCK) {
      const ticks = read(at + word);
      return ticks > 0 ? ticks : DEFAULT_TICKS;
    }
  }
  return DEFAULT_TICKS;
}
