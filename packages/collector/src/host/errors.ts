// Typed errors of the host inventory. Everything a running host can throw at a scan (processes
// that exit mid-read, missing runtime state) is absorbed where it happens; only a configuration
// mistake reaches the caller.

/** EBPF_NET_HOST_DIR (or the hostDir argument) names a directory that does not exist. */
export class HostDirMissingError extends Error {
  override readonly name = 'HostDirMissingError';
  constructor(readonly path: string) {
    super(`the host directory ${path} does not exist: mount the host's / there (read-only is enough), or unset EBPF_NET_HOST_DIR when the collector runs on the host itself`);
  }
}
