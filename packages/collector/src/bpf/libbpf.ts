// Raw declarations of the libbpf.so.1 and libc functions this module calls through ffi-rs.
//
// Everything above this file sees numbers, strings and Buffers, never ffi-rs types. Pointers
// travel as JS numbers (`Ptr`, NULL = 0): user-space addresses on x86-64 and arm64 are below
// 2^48, so a double holds them exactly, and a U64 argument has the ABI of a pointer.
//
// Three call shapes:
//   plain    → the C return value.
//   errno    → { value, errno } for calls that return NULL / -1 and set errno.
//   threaded → the same, as a Promise, run on a new thread (ffi-rs runInNewThread). Used for the
//              calls that make libbpf print, so that libbpf-log.ts can format the print
//              callback's va_list while the calling thread waits (see there).

import { createPointer, DataType, freePointer, funcConstructor, load, open, PointerType, unwrapPointer, type FieldType } from 'ffi-rs';
import { LibbpfUnavailableError } from './errors.js';

export type Ptr = number;

export interface ErrnoResult<T> {
  value: T;
  /** errno after the call; only meaningful when `value` says the call failed. */
  errno: number;
}

const LIBBPF = 'ebpf-net:libbpf';
const LIBC = 'ebpf-net:libc';
const LIBBPF_PATH = 'libbpf.so.1';

let libraries: 'closed' | 'open' = 'closed';

// Opened on first use, not at import: importing the collector must work on a machine without
// libbpf (tests of other parts, --help).
function ensureLibraries(): void {
  if (libraries === 'open') return;
  try {
    open({ library: LIBBPF, path: LIBBPF_PATH });
    // An empty path is dlopen(NULL): the process itself, which links libc.
    open({ library: LIBC, path: '' });
  } catch (err) {
    throw new LibbpfUnavailableError(`cannot open ${LIBBPF_PATH} (install Debian's libbpf1): ${(err as Error).message}`);
  }
  libraries = 'open';
}

const { U64, I64, I32, U32, U8, String: STR, U8Array: BUF, Void: VOID } = DataType;

function plain<R, A extends unknown[]>(library: string, funcName: string, retType: FieldType, paramsType: FieldType[]) {
  return (...args: A): R => {
    ensureLibraries();
    // A fresh params object per call: ffi-rs rewrites paramsType in place (Buffer lengths).
    return load({ library, funcName, retType, paramsType: paramsType.slice(), paramsValue: args }) as R;
  };
}

function withErrno<R, A extends unknown[]>(library: string, funcName: string, retType: FieldType, paramsType: FieldType[]) {
  return (...args: A): ErrnoResult<R> => {
    ensureLibraries();
    const r = load({ library, funcName, retType, paramsType: paramsType.slice(), paramsValue: args, errno: true }) as unknown as {
      value: R;
      errnoCode: number;
    };
    return { value: r.value, errno: r.errnoCode };
  };
}

function threaded<R, A extends unknown[]>(library: string, funcName: string, retType: FieldType, paramsType: FieldType[]) {
  return async (...args: A): Promise<ErrnoResult<R>> => {
    ensureLibraries();
    const r = (await load({
      library,
      funcName,
      retType,
      paramsType: paramsType.slice(),
      paramsValue: args,
      errno: true,
      runInNewThread: true,
    })) as unknown as { value: R; errnoCode: number };
    return { value: r.value, errno: r.errnoCode };
  };
}

// --- objects --------------------------------------------------------------------------------

export const bpf_object__open_file = threaded<Ptr, [path: string, opts: Ptr]>(LIBBPF, 'bpf_object__open_file', U64, [STR, U64]);
/** Returns 0 or a negative errno. */
export const bpf_object__load = threaded<number, [obj: Ptr]>(LIBBPF, 'bpf_object__load', I32, [U64]);
export const bpf_object__close = plain<void, [obj: Ptr]>(LIBBPF, 'bpf_object__close', VOID, [U64]);
export const bpf_object__next_program = plain<Ptr, [obj: Ptr, prev: Ptr]>(LIBBPF, 'bpf_object__next_program', U64, [U64, U64]);
export const bpf_object__next_map = plain<Ptr, [obj: Ptr, prev: Ptr]>(LIBBPF, 'bpf_object__next_map', U64, [U64, U64]);
export const bpf_object__btf = plain<Ptr, [obj: Ptr]>(LIBBPF, 'bpf_object__btf', U64, [U64]);

// --- programs -------------------------------------------------------------------------------

export const bpf_program__name = plain<string, [prog: Ptr]>(LIBBPF, 'bpf_program__name', STR, [U64]);
export const bpf_program__section_name = plain<string, [prog: Ptr]>(LIBBPF, 'bpf_program__section_name', STR, [U64]);
export const bpf_program__type = plain<number, [prog: Ptr]>(LIBBPF, 'bpf_program__type', I32, [U64]);
export const bpf_program__fd = plain<number, [prog: Ptr]>(LIBBPF, 'bpf_program__fd', I32, [U64]);
// C bool is passed as an int (0/1) and read back as one byte: the upper bits of eax are undefined.
export const bpf_program__set_autoload = plain<number, [prog: Ptr, autoload: number]>(LIBBPF, 'bpf_program__set_autoload', I32, [U64, I32]);
export const bpf_program__autoload = plain<number, [prog: Ptr]>(LIBBPF, 'bpf_program__autoload', U8, [U64]);
export const bpf_program__set_log_buf = plain<number, [prog: Ptr, buf: Buffer, size: number]>(LIBBPF, 'bpf_program__set_log_buf', I32, [U64, BUF, U64]);
export const bpf_program__clear_log_buf = plain<number, [prog: Ptr, buf: Ptr, size: number]>(LIBBPF, 'bpf_program__set_log_buf', I32, [U64, U64, U64]);
export const bpf_program__set_log_level = plain<number, [prog: Ptr, level: number]>(LIBBPF, 'bpf_program__set_log_level', I32, [U64, U32]);
export const bpf_program__attach = threaded<Ptr, [prog: Ptr]>(LIBBPF, 'bpf_program__attach', U64, [U64]);
export const bpf_program__attach_cgroup = threaded<Ptr, [prog: Ptr, cgroupFd: number]>(LIBBPF, 'bpf_program__attach_cgroup', U64, [U64, I32]);
/** struct bpf_test_run_opts is 80 bytes in libbpf 1.x (see TEST_RUN_OPTS_SIZE); returns 0 or -errno. */
export const bpf_prog_test_run_opts = plain<number, [fd: number, opts: Buffer]>(LIBBPF, 'bpf_prog_test_run_opts', I32, [I32, BUF]);
export const TEST_RUN_OPTS_SIZE = 80;
export const TEST_RUN_OPTS_RETVAL = 56;
export const bpf_link__destroy = plain<number, [link: Ptr]>(LIBBPF, 'bpf_link__destroy', I32, [U64]);

// --- maps -----------------------------------------------------------------------------------

export const bpf_map__name = plain<string, [map: Ptr]>(LIBBPF, 'bpf_map__name', STR, [U64]);
export const bpf_map__type = plain<number, [map: Ptr]>(LIBBPF, 'bpf_map__type', I32, [U64]);
export const bpf_map__key_size = plain<number, [map: Ptr]>(LIBBPF, 'bpf_map__key_size', U32, [U64]);
export const bpf_map__value_size = plain<number, [map: Ptr]>(LIBBPF, 'bpf_map__value_size', U32, [U64]);
export const bpf_map__max_entries = plain<number, [map: Ptr]>(LIBBPF, 'bpf_map__max_entries', U32, [U64]);
export const bpf_map__map_flags = plain<number, [map: Ptr]>(LIBBPF, 'bpf_map__map_flags', U32, [U64]);
export const bpf_map__set_max_entries = plain<number, [map: Ptr, n: number]>(LIBBPF, 'bpf_map__set_max_entries', I32, [U64, U32]);
export const bpf_map__fd = plain<number, [map: Ptr]>(LIBBPF, 'bpf_map__fd', I32, [U64]);
/** `psize` receives a size_t (8 bytes). */
export const bpf_map__initial_value = plain<Ptr, [map: Ptr, psize: Buffer]>(LIBBPF, 'bpf_map__initial_value', U64, [U64, BUF]);

// Low-level map calls (bpf.h): 0 or a negative errno. `count` is a __u32 in/out (4 bytes).
type BatchArgs = [fd: number, inBatch: Buffer, outBatch: Buffer, keys: Buffer, values: Buffer, count: Buffer, opts: Ptr];
type FirstBatchArgs = [fd: number, inBatch: Ptr, outBatch: Buffer, keys: Buffer, values: Buffer, count: Buffer, opts: Ptr];
const BATCH: FieldType[] = [I32, BUF, BUF, BUF, BUF, BUF, U64];
// The first call of an iteration passes in_batch = NULL.
const FIRST_BATCH: FieldType[] = [I32, U64, BUF, BUF, BUF, BUF, U64];
export const bpf_map_lookup_batch = plain<number, BatchArgs>(LIBBPF, 'bpf_map_lookup_batch', I32, BATCH);
export const bpf_map_lookup_batch_first = plain<number, FirstBatchArgs>(LIBBPF, 'bpf_map_lookup_batch', I32, FIRST_BATCH);
export const bpf_map_lookup_and_delete_batch = plain<number, BatchArgs>(LIBBPF, 'bpf_map_lookup_and_delete_batch', I32, BATCH);
export const bpf_map_lookup_and_delete_batch_first = plain<number, FirstBatchArgs>(LIBBPF, 'bpf_map_lookup_and_delete_batch', I32, FIRST_BATCH);
export const bpf_map_delete_batch = plain<number, [fd: number, keys: Buffer, count: Buffer, opts: Ptr]>(LIBBPF, 'bpf_map_delete_batch', I32, [I32, BUF, BUF, U64]);
export const bpf_map_lookup_elem = plain<number, [fd: number, key: Buffer, value: Buffer]>(LIBBPF, 'bpf_map_lookup_elem', I32, [I32, BUF, BUF]);
export const bpf_map_update_elem = plain<number, [fd: number, key: Buffer, value: Buffer, flags: number]>(LIBBPF, 'bpf_map_update_elem', I32, [I32, BUF, BUF, U64]);
export const bpf_map_delete_elem = plain<number, [fd: number, key: Buffer]>(LIBBPF, 'bpf_map_delete_elem', I32, [I32, BUF]);

// --- BTF ------------------------------------------------------------------------------------

/** Returns the type id, or a negative errno (-ENOENT). */
export const btf__find_by_name_kind = plain<number, [btf: Ptr, name: string, kind: number]>(LIBBPF, 'btf__find_by_name_kind', I32, [U64, STR, U32]);
export const btf__type_by_id = plain<Ptr, [btf: Ptr, id: number]>(LIBBPF, 'btf__type_by_id', U64, [U64, U32]);
export const btf__name_by_offset = plain<string, [btf: Ptr, offset: number]>(LIBBPF, 'btf__name_by_offset', STR, [U64, U32]);

// --- library --------------------------------------------------------------------------------

export const libbpf_strerror = plain<number, [err: number, buf: Buffer, size: number]>(LIBBPF, 'libbpf_strerror', I32, [I32, BUF, U64]);
/** Takes and returns a libbpf_print_fn_t; NULL turns printing off. */
export const libbpf_set_print = plain<Ptr, [fn: Ptr]>(LIBBPF, 'libbpf_set_print', U64, [U64]);
export const libbpf_num_possible_cpus = plain<number, []>(LIBBPF, 'libbpf_num_possible_cpus', I32, []);

// --- libc -----------------------------------------------------------------------------------

/** Returns the address, or -1 (MAP_FAILED) with errno. */
export const mmap = withErrno<number, [addr: Ptr, length: number, prot: number, flags: number, fd: number, offset: number]>(
  LIBC,
  'mmap',
  I64,
  [U64, U64, I32, I32, I32, I64],
);
export const munmap = plain<number, [addr: Ptr, length: number]>(LIBC, 'munmap', I32, [U64, U64]);
export const sysconf = plain<number, [name: number]>(LIBC, 'sysconf', I64, [I32]);
export const mount = withErrno<number, [source: string, target: string, fstype: string, flags: number, data: Ptr]>(
  LIBC,
  'mount',
  I32,
  [STR, STR, STR, U64, U64],
);
/** `ap` is a va_list as passed to a callback: on x86-64 and arm64 Linux, a pointer. */
export const vsnprintf = plain<number, [buf: Buffer, size: number, fmt: Ptr, ap: Ptr]>(LIBC, 'vsnprintf', I32, [BUF, U64, U64, U64]);
export const strlen = plain<number, [s: Ptr]>(LIBC, 'strlen', U64, [U64]);

/** glibc 2.36+. Each returns a descriptor, or -1 with errno. */
export const pidfd_open = withErrno<number, [pid: number, flags: number]>(LIBC, 'pidfd_open', I32, [I32, U32]);
export const pidfd_getfd = withErrno<number, [pidfd: number, targetfd: number, flags: number]>(LIBC, 'pidfd_getfd', I32, [I32, I32, U32]);
export const recv = withErrno<number, [fd: number, buf: Ptr, length: number, flags: number]>(LIBC, 'recv', I64, [I32, U64, U64, I32]);
export const close = plain<number, [fd: number]>(LIBC, 'close', I32, [I32]);

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const SC_PAGESIZE = 30;

export const ffiLibraries = { ensure: ensureLibraries } as const;

// --- the print callback ---------------------------------------------------------------------

/** libbpf_print_fn_t seen from JS: (level, fmt pointer, va_list pointer) → int. */
export type PrintCallback = (level: number, fmt: Ptr, ap: Ptr) => number;

// The return type must not be void: only then does ffi-rs make a C call from another thread wait
// for the JS function (see libbpf-log.ts).
const PRINT_FN = funcConstructor({ paramsType: [I32, U64, U64], retType: I32 });

/** Makes `callback` libbpf's printer; `remove()` restores the previous one and frees the callback. */
export function installPrintCallback(callback: PrintCallback): { remove(): void } {
  ensureLibraries();
  const box = createPointer({ paramsType: [PRINT_FN], paramsValue: [callback] });
  const previous = load({
    library: LIBBPF,
    funcName: 'libbpf_set_print',
    retType: U64,
    paramsType: [DataType.External],
    paramsValue: unwrapPointer(box),
  }) as unknown as Ptr;
  let removed = false;
  return {
    remove() {
      if (removed) return;
      removed = true;
      libbpf_set_print(previous);
      // Releases ffi-rs's threadsafe function, which otherwise keeps the event loop alive.
      freePointer({ paramsType: [PRINT_FN], paramsValue: box, pointerType: PointerType.RsPointer });
    },
  };
}
