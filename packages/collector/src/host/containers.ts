// Which container a cgroup belongs to, from the cgroup path alone. Runtimes name the cgroup of a
// container after its id, each in its own way:
//
//   docker      /docker/<id>                                   (cgroupfs driver)
//               /system.slice/docker-<id>.scope                (systemd driver)
//   containerd  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
//               /kubepods/burstable/pod<uid>/<id>              (cgroupfs driver: the runtime is not named)
//   cri-o       .../crio-<id>.scope, .../pod<uid>/crio-<id>
//   podman      /machine.slice/libpod-<id>.scope, /libpod_parent/libpod-<id>, rootless under user@<uid>.service
//
// alike on v1 and v2. Nested runtimes (a kind node, docker-in-docker) stack these: the innermost
// container is the one the process runs in. Anything else is a host process: its systemd unit,
// or "host".

import { ContainerRuntime } from '@ebpf-net/protocol';

export type ContainerRuntimeValue = (typeof ContainerRuntime)[keyof typeof ContainerRuntime];

export interface ContainerRef {
  runtime: ContainerRuntimeValue;
  /** The full container id; for a host process its systemd unit, or "host". */
  id: string;
}

export const HOST_ID = 'host';

/** A path component that names its runtime and the container id. */
const NAMED_COMPONENTS: readonly (readonly [RegExp, ContainerRuntimeValue])[] = [
  [/^docker-([0-9a-f]{64})\.scope$/, ContainerRuntime.DOCKER],
  [/^cri-containerd-([0-9a-f]{64})\.scope$/, ContainerRuntime.CONTAINERD],
  [/^crio-([0-9a-f]{64})(?:\.scope)?$/, ContainerRuntime.CRIO],
  [/^libpod-([0-9a-f]{64})(?:\.scope)?$/, ContainerRuntime.PODMAN],
];
const BARE_ID = /^[0-9a-f]{64}$/;
/** A Kubernetes pod's cgroup with the cgroupfs driver: "pod" and the pod's uid. */
const POD_COMPONENT = /^pod[0-9a-f-]+$/;
const UNIT = /\.(?:service|scope)$/;

/** The container behind a cgroup path (v2 or v1); undefined when the path is unknown (''). */
export function containerOfCgroup(cgroupPath: string): ContainerRef | undefined {
  if (cgroupPath === '') return undefined;
  const parts = cgroupPath.split('/');
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i]!;
    for (const [pattern, runtime] of NAMED_COMPONENTS) {
      const match = pattern.exec(part);
      if (match !== null) return { runtime, id: match[1]! };
    }
    if (BARE_ID.test(part)) {
      const parent = parts[i - 1] ?? '';
      if (parent === 'docker') return { runtime: ContainerRuntime.DOCKER, id: part };
      // Kubernetes' cgroupfs layout does not say which CRI runtime; containerd is the common one.
      if (POD_COMPONENT.test(parent)) return { runtime: ContainerRuntime.CONTAINERD, id: part };
      return { runtime: ContainerRuntime.UNKNOWN, id: part };
    }
  }
  // conmon's crio-conmon-<id>.scope and libpod-conmon-<id>.scope are host helpers: units, here.
  for (let i = parts.length - 1; i >= 0; i--) {
    if (UNIT.test(parts[i]!)) return { runtime: ContainerRuntime.SYSTEMD, id: parts[i]! };
  }
  return { runtime: ContainerRuntime.HOST, id: HOST_ID };
}

/** True for a runtime that runs containers (not SYSTEMD or HOST). */
export function isContainerRuntime(runtime: ContainerRuntimeValue): boolean {
  return runtime !== ContainerRuntime.SYSTEMD && runtime !== ContainerRuntime.HOST;
}

/**
 * The container of a process, from both of its cgroup paths. A container found in either wins:
 * on hybrid hosts docker's cgroupfs driver places containers only in the v1 hierarchies, while
 * their v2 cgroup is the shim's (containerd.service).
 */
export function containerOfProcess(p: { cgroupPath: string; cgroupV1Path: string }): ContainerRef | undefined {
  const v2 = containerOfCgroup(p.cgroupPath);
  if (v2 !== undefined && isContainerRuntime(v2.runtime)) return v2;
  const v1 = containerOfCgroup(p.cgroupV1Path);
  if (v1 !== undefined && isContainerRuntime(v1.runtime)) return v1;
  return v2 ?? v1;
}
