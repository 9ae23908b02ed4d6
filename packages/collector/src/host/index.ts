// The host inventory: what existed before the collector started (processes, sockets), and which
// container or service each cgroup belongs to. Reads /proc and the runtimes' state, through
// EBPF_NET_HOST_DIR when the collector runs in a container.

export { HostDirMissingError } from './errors.js';
export { DEFAULT_HOST_DIR, HOST_DIR_ENV, type HostPaths, cgroup2MountPoint, resolveHostPaths } from './host-paths.js';
export { clockTicksPerSecond } from './clock-ticks.js';
export {
  CMDLINE_MAX_BYTES,
  type CgroupPaths,
  type ProcessRecord,
  type StatFields,
  formatCmdline,
  listPids,
  parseCgroupFile,
  parseNsLink,
  parseRealUid,
  parseStat,
  readProcess,
  scanProcesses,
} from './processes.js';
export {
  type AddressFamilyValue,
  type SocketProtocolValue,
  type SocketTableEntry,
  TcpState,
  formatIpv4Hex,
  formatIpv6Hex,
  parseSocketTable,
} from './socket-table.js';
export { type SocketRecord, type SocketRole, scanSockets, socketOwners } from './sockets.js';
export {
  type ContainerRef,
  type ContainerRuntimeValue,
  HOST_ID,
  containerOfCgroup,
  containerOfProcess,
  isContainerRuntime,
} from './containers.js';
export { type ContainerMetadata, METADATA_CACHE_LIMIT, readContainerMetadata } from './container-metadata.js';
