// libbpf's own messages, routed into pino.
//
// libbpf prints through `int print(enum libbpf_print_level, const char *fmt, va_list ap)`. ffi-rs
// turns a JS function into a C function pointer, but calls it through a napi threadsafe function:
//   - called on the main JS thread, the call is only queued; the JS function runs after the C
//     call has returned, when `ap` points into a dead stack frame (measured: the callback for
//     bpf_object__open_file's messages ran after open_file returned). Unusable for vsnprintf.
//   - called on another thread with a non-void return type, ffi-rs blocks that thread until the
//     JS function has run on the main thread. `ap` is still alive then.
// So the libbpf calls that print (open, load, attach) run on a new thread (libbpf.ts `threaded`)
// and the callback formats each message with libc vsnprintf over the live va_list, then logs it.
//
// The callback is installed only around those calls, one operation at a time (a queue), and
// libbpf's default printer (stderr) is restored afterwards: ffi-rs's threadsafe function keeps
// the event loop alive while it exists, and a libbpf call made on the main thread meanwhile would
// hand us a dead va_list. That last case is caught: a va_list that lies on the main thread's
// stack is never formatted; its format string is logged instead.

import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { installPrintCallback, vsnprintf, type Ptr } from './libbpf.js';
import { readCString } from './memory.js';

const LIBBPF_WARN = 0;
const LIBBPF_INFO = 1;

const FORMAT_BUFFER = Buffer.alloc(64 * 1024);

let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs `op` (which makes threaded libbpf calls) with libbpf's printer routed to `logger`.
 * Operations are serialised. Messages of level warn and info are also pushed to `sink`.
 */
export function withLibbpfLog<T>(logger: Logger, op: () => Promise<T>, sink?: string[]): Promise<T> {
  const run = async (): Promise<T> => {
    const hook = installPrintCallback(printer(logger, sink));
    try {
      return await op();
    } finally {
      hook.remove();
    }
  };
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}

function printer(logger: Logger, sink: string[] | undefined) {
  return (level: number, fmt: Ptr, ap: Ptr): number => {
    // ffi-rs aborts the process when this throws: nothing may escape.
    try {
      const pinoLevel = level === LIBBPF_WARN ? 'warn' : level === LIBBPF_INFO ? 'info' : 'debug';
      const wanted = logger.isLevelEnabled(pinoLevel) || (sink !== undefined && level <= LIBBPF_INFO);
      if (!wanted) return 0;
      const text = onMainStack(ap) ? `${readCString(fmt)} (arguments lost: libbpf printed on the main thread)` : format(fmt, ap);
      const message = text.replace(/^libbpf: /, '').replace(/\n$/, '');
      if (sink !== undefined && level <= LIBBPF_INFO) sink.push(message);
      logger[pinoLevel]({ libbpfLevel: level }, message);
    } catch {
      // A lost log line is better than a dead process.
    }
    return 0;
  };
}

function format(fmt: Ptr, ap: Ptr): string {
  const n = vsnprintf(FORMAT_BUFFER, FORMAT_BUFFER.length, fmt, ap);
  if (n < 0) return readCString(fmt);
  // The va_list is consumed; a longer message cannot be formatted again, only marked.
  if (n >= FORMAT_BUFFER.length) return `${FORMAT_BUFFER.toString('utf8', 0, FORMAT_BUFFER.length - 1)}... (truncated)`;
  return FORMAT_BUFFER.toString('utf8', 0, n);
}

// The main thread's stack, from /proc/self/maps. Other threads' stacks are mmap()ed at least
// 128 MiB below its top (mmap_base keeps that gap), so a 64 MiB window cannot catch them.
let mainStackTop = -1;
function onMainStack(address: Ptr): boolean {
  if (mainStackTop < 0) {
    const line = readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .find((l) => l.endsWith('[stack]'));
    mainStackTop = line ? parseInt(line.split('-')[1]!, 16) : 0;
  }
  return mainStackTop > 0 && address < mainStackTop && address >= mainStackTop - 64 * 1024 * 1024;
}
