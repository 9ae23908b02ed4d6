// Native memory seen from JavaScript without copying.
//
// ffi-rs's createExternalBuffer wraps a pointer in a Buffer that shares the memory (no copy, no
// finalizer). It takes a pointer as an ffi-rs External, and this module carries pointers as
// numbers, so a number becomes an External by boxing it (createPointer: a heap u64 holding the
// address) and reading the box back (unwrapPointer: *box, as an External).
//
// The Buffer does not own the memory: whoever mapped or allocated it must keep it alive while
// the Buffer is used, and nobody may touch the Buffer after the memory is gone.

import { createExternalBuffer, createPointer, DataType, freePointer, PointerType, unwrapPointer } from 'ffi-rs';
import { BpfCallError } from './errors.js';
import { MAP_SHARED, SC_PAGESIZE, ffiLibraries, mmap, strlen, sysconf, type Ptr } from './libbpf.js';

/** A Buffer over `length` bytes at `address` (zero-copy). */
export function externalBuffer(address: Ptr, length: number): Buffer {
  if (!address) throw new RangeError('externalBuffer: NULL address');
  ffiLibraries.ensure();
  const box = createPointer({ paramsType: [DataType.U64], paramsValue: [address] });
  try {
    const [external] = unwrapPointer(box);
    return createExternalBuffer(external!, length);
  } finally {
    freePointer({ paramsType: [DataType.U64], paramsValue: box, pointerType: PointerType.RsPointer });
  }
}

/** A copy of `length` bytes at `address`, for memory that may go away later (BTF, libbpf state). */
export function copyOut(address: Ptr, length: number): Buffer {
  return Buffer.from(externalBuffer(address, length));
}

/** The NUL-terminated string at `address`, '' for NULL. */
export function readCString(address: Ptr): string {
  if (!address) return '';
  const n = strlen(address);
  return n ? externalBuffer(address, n).toString('utf8') : '';
}

/** mmap(MAP_SHARED) of `length` bytes of fd at `offset`; throws with the errno. `what` names it in the error. */
export function mapShared(what: string, length: number, prot: number, fd: number, offset: number): Ptr {
  const r = mmap(0, length, prot, MAP_SHARED, fd, offset);
  if (r.value === -1 || r.value === 0) throw new BpfCallError(`mmap of ${what} (${length} bytes at ${offset})`, r.errno);
  return r.value;
}

let page = 0;
export function pageSize(): number {
  if (!page) page = sysconf(SC_PAGESIZE);
  return page;
}
