// An array map read in place: a BPF_MAP_TYPE_ARRAY declared with BPF_F_MMAPABLE, mmap()ed
// read-only, its values a Buffer over the kernel's own memory (memory.ts). A read costs no bpf(2)
// call and no copy; bpf_map_lookup_batch on an array copies each value with a call of its own
// (~400 ns an entry, measured on this project's VM).
//
// The values change under the reader: use it for what the programs no longer write (tcp_snapshot,
// written by refresh_tcp, which user space runs itself right before it reads).

import { BpfConfigError } from './errors.js';
import * as lib from './libbpf.js';
import type { Ptr } from './libbpf.js';
import { type BpfMap, MapType } from './map.js';
import { externalBuffer, mapShared, pageSize } from './memory.js';

export const BPF_F_MMAPABLE = 1 << 10;

export class MappedArray {
  /** maxEntries × valueStride bytes: the value of index i at i × valueStride. Invalid after close(). */
  readonly values: Buffer;
  readonly valueStride: number;
  private address: Ptr;
  private readonly length: number;

  constructor(readonly map: BpfMap) {
    if (map.type !== MapType.ARRAY || (lib.bpf_map__map_flags(map.pointer) & BPF_F_MMAPABLE) === 0) {
      throw new BpfConfigError(`map '${map.name}' cannot be mapped: only an array declared with BPF_F_MMAPABLE can`);
    }
    // The kernel lays the values out 8-byte aligned, from offset 0 of the mapping.
    this.valueStride = (map.valueSize + 7) & ~7;
    const bytes = this.valueStride * map.maxEntries;
    const page = pageSize();
    this.length = Math.ceil(bytes / page) * page;
    this.address = mapShared(`array '${map.name}'`, this.length, lib.PROT_READ, map.fd, 0);
    this.values = externalBuffer(this.address, bytes);
  }

  /** Unmaps; idempotent. The object closes its mapped arrays before the maps. */
  close(): void {
    if (!this.address) return;
    lib.munmap(this.address, this.length);
    this.address = 0;
  }
}
