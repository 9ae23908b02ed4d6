// The libbpf binding: the only part of ebpf-net that talks to native code (through ffi-rs).
//
//   const obj = await BpfObject.open('tcp.bpf.o', { logger });
//   obj.setKnob('target_pid', 1234);            // const volatile, before load
//   obj.setMaxEntries('sockets', 65536);
//   await obj.load();                           // BpfLoadError carries the verifier log
//   const results = await obj.attach();         // one result per program
//   const ring = obj.ringBuffer('events', (data, offset, length) => { ... });
//   ring.start(10);                             // or ring.drain()
//   obj.map('sockets').batchReader().read((batch) => { ... });
//   obj.close();                                // or installSignalHandlers()

export { BpfObject, VMLINUX_BTF, type BpfObjectOptions, type AttachOptions, type ProgramInfo } from './object.js';
export { MappedArray, BPF_F_MMAPABLE } from './mapped-array.js';
export { BpfMap, MapBatchReader, MapType, DEFAULT_BATCH_ENTRIES, type MapBatch, type BatchReadOptions, type BatchReaderStats, type ObjectState } from './map.js';
export { RingBuffer, type SampleHandler, type RingBufferOptions, type RingBufferStats } from './ring-buffer.js';
export { ProgramType, isCgroupProgram, type AttachResult, type AttachStatus } from './attach.js';
export type { VariableLayout } from './btf.js';
export type { KnobValue } from './knobs.js';
export { ensureBpfMounts, cgroup2Root, readMounts, BPFFS_PATH, TRACEFS_PATH, type BpfMountsReport, type MountStatus, type MountEntry } from './mounts.js';
export { installSignalHandlers, type SignalHandlerOptions } from './signals.js';
export { closeAllBpfObjects, openObjectCount } from './registry.js';
export { errnoName } from './errno.js';
export { peekForeignSocket } from './foreign-socket.js';
export {
  BpfError,
  BpfNotPermittedError,
  BtfMissingError,
  BpfLoadError,
  BpfAttachError,
  BpfConfigError,
  BpfCallError,
  LibbpfUnavailableError,
} from './errors.js';
