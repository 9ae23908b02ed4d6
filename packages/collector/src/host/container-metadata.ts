// Names for a container id, from the runtime's own state on disk: no runtime API, no socket, so
// it works the same for every runtime and needs nothing but the host's files.
//
//   docker      /var/lib/docker/containers/<id>/config.v2.json: Name, Config.Image, Config.Labels
//   containerd  /run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/config.json: the
//               OCI spec, whose annotations the CRI plugin fills (io.kubernetes.cri.*)
//   cri-o,      {/run,/var/lib}/containers/storage/overlay-containers/<id>/userdata/config.json:
//   podman      the OCI spec (cri-o: io.kubernetes.* labels, its own io.kubernetes.cri-o.*), and
//               containers/storage's record in overlay-containers/[volatile-]containers.json,
//               which holds podman's name and image

import { readFileSync, readdirSync } from 'node:fs';
import { ContainerRuntime } from '@ebpf-net/protocol';
import type { ContainerRuntimeValue } from './containers.js';
import type { HostPaths } from './host-paths.js';

export interface ContainerMetadata {
  readonly name: string;
  readonly image: string;
  readonly podName: string;
  readonly podNamespace: string;
  readonly podUid: string;
}

/** Containers whose metadata is kept; the oldest used goes first. */
export const METADATA_CACHE_LIMIT = 4096;

const EMPTY: ContainerMetadata = Object.freeze({ name: '', image: '', podName: '', podNamespace: '', podUid: '' });
const cache = new Map<string, ContainerMetadata>();

/** Ids become path components: nothing that could climb out of the runtime's directory. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

type Reader = (paths: HostPaths, id: string) => ContainerMetadata | undefined;

/**
 * What the runtime's state says of container `id`; empty fields for what it does not say, and
 * all empty when the state is missing or unreadable. Found metadata is cached per id (a container's
 * names never change); misses are not, as the state may be written a moment later.
 */
export function readContainerMetadata(paths: HostPaths, runtime: ContainerRuntimeValue, id: string): ContainerMetadata {
  const readers = READERS[runtime];
  if (readers.length === 0 || !SAFE_ID.test(id)) return EMPTY;
  const key = `${paths.root}\0${runtime}\0${id}`;
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key); // to the back of the eviction order
    cache.set(key, hit);
    return hit;
  }
  for (const read of readers) {
    const found = read(paths, id);
    if (found === undefined) continue;
    cache.set(key, found);
    if (cache.size > METADATA_CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    return found;
  }
  return EMPTY;
}

const readDocker: Reader = (paths, id) => {
  const config = readJsonObject(`${paths.docker}/containers/${id}/config.v2.json`);
  if (config === undefined) return undefined;
  const inner = asObject(config.Config);
  const labels = asObject(inner.Labels);
  return Object.freeze({
    // Kubernetes through cri-dockerd names containers k8s_<container>_<pod>_...: the label is the real name.
    name: str(labels['io.kubernetes.container.name']) || str(config.Name).replace(/^\//, ''),
    image: str(inner.Image),
    podName: str(labels['io.kubernetes.pod.name']),
    podNamespace: str(labels['io.kubernetes.pod.namespace']),
    podUid: str(labels['io.kubernetes.pod.uid']),
  });
};

const readContainerd: Reader = (paths, id) => {
  const tasks = `${paths.containerdState}/io.containerd.runtime.v2.task`;
  // Kubernetes' namespace first; then docker's (moby), ctr's and nerdctl's (default), ...
  const namespaces = ['k8s.io', ...listDir(tasks).filter((ns) => ns !== 'k8s.io')];
  for (const ns of namespaces) {
    const spec = readJsonObject(`${tasks}/${ns}/${id}/config.json`);
    if (spec === undefined) continue;
    const a = asObject(spec.annotations);
    return Object.freeze({
      name: str(a['io.kubernetes.cri.container-name']) || str(a['nerdctl/name']),
      image: str(a['io.kubernetes.cri.image-name']),
      podName: str(a['io.kubernetes.cri.sandbox-name']),
      podNamespace: str(a['io.kubernetes.cri.sandbox-namespace']),
      podUid: str(a['io.kubernetes.cri.sandbox-uid']),
    });
  }
  return undefined;
};

const readContainersStorage: Reader = (paths, id) => {
  const roots = [paths.containersRunRoot, paths.containersGraphRoot];
  let spec: Record<string, unknown> | undefined;
  for (const root of roots) {
    spec ??= readJsonObject(`${root}/overlay-containers/${id}/userdata/config.json`);
  }
  const a = asObject(spec?.annotations);
  // cri-o keeps the Kubernetes labels as one JSON annotation; podman's kube play sets them directly.
  const labels = parseJsonObject(str(a['io.kubernetes.cri-o.Labels']));
  const get = (key: string): string => str(a[key]) || str(labels[key]);
  let name = get('io.kubernetes.container.name') || str(parseJsonObject(str(a['io.kubernetes.cri-o.Metadata'])).name);
  let image = str(a['io.kubernetes.cri-o.ImageName']);
  let record: Record<string, unknown> | undefined;
  if (name === '' || image === '') {
    record = storageRecord(roots, id);
    const metadata = parseJsonObject(str(record?.metadata));
    const names = record?.names;
    name ||= str(metadata.name) || (Array.isArray(names) ? str(names[0]) : '');
    image ||= str(metadata['image-name']);
  }
  if (spec === undefined && record === undefined) return undefined;
  return Object.freeze({
    name,
    image,
    podName: get('io.kubernetes.pod.name'),
    podNamespace: get('io.kubernetes.pod.namespace'),
    podUid: get('io.kubernetes.pod.uid'),
  });
};

/** containers/storage's record of a container: { id, names, image, metadata (a JSON string) }. */
function storageRecord(roots: readonly string[], id: string): Record<string, unknown> | undefined {
  for (const root of roots) {
    for (const file of ['containers.json', 'volatile-containers.json']) {
      let list: unknown;
      try {
        list = JSON.parse(readFileSync(`${root}/overlay-containers/${file}`, 'utf8'));
      } catch {
        continue;
      }
      if (!Array.isArray(list)) continue;
      const found: unknown = list.find((c: unknown) => asObject(c).id === id);
      if (found !== undefined) return asObject(found);
    }
  }
  return undefined;
}

/** Which stores to look in, per runtime; an unknown runtime is looked for in all of them. */
const READERS: Record<ContainerRuntimeValue, readonly Reader[]> = {
  [ContainerRuntime.UNKNOWN]: [readDocker, readContainerd, readContainersStorage],
  [ContainerRuntime.DOCKER]: [readDocker],
  [ContainerRuntime.CONTAINERD]: [readContainerd],
  [ContainerRuntime.CRIO]: [readContainersStorage],
  [ContainerRuntime.PODMAN]: [readContainersStorage],
  [ContainerRuntime.SYSTEMD]: [],
  [ContainerRuntime.HOST]: [],
};

function readJsonObject(path: string): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const value = parseJsonObject(text);
  return value === NO_OBJECT ? undefined : value;
}

const NO_OBJECT: Record<string, unknown> = Object.freeze({});

/** A JSON object, or an empty one for anything else (bad JSON, an array, a string). */
function parseJsonObject(text: string): Record<string, unknown> {
  if (text === '') return NO_OBJECT;
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : NO_OBJECT;
  } catch {
    return NO_OBJECT;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asObject(value: unknown): Record<string, unknown> {
  return isObject(value) ? value : NO_OBJECT;
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
