// Containers: every runtime's cgroup layouts, and each runtime's metadata on disk (fake host).

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ContainerRuntime } from '@ebpf-net/protocol';
import {
  type HostPaths,
  containerOfCgroup,
  containerOfProcess,
  readContainerMetadata,
  resolveHostPaths,
  scanProcesses,
} from '../src/host/index.js';
import {
  BROKEN_ID,
  CONTAINERD_ID,
  CRIO_ID,
  DOCKER_ID,
  DOCKER_K8S_ID,
  type FakeHost,
  NERDCTL_ID,
  PODMAN_ID,
  POD_UID,
  buildFakeHost,
} from './fixtures/host/fake-host.js';

const ID = '3f2a9c1b7e4d5a6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7';
const { UNKNOWN, DOCKER, CONTAINERD, CRIO, PODMAN, SYSTEMD, HOST } = ContainerRuntime;
const UNDERSCORED_UID = POD_UID.replace(/-/g, '_');

describe('containerOfCgroup', () => {
  const cases: [string, string, { runtime: number; id: string }][] = [
    ['docker, cgroupfs (v1)', `/docker/${ID}`, { runtime: DOCKER, id: ID }],
    ['docker, systemd', `/system.slice/docker-${ID}.scope`, { runtime: DOCKER, id: ID }],
    ['docker, a sub-cgroup of the container', `/system.slice/docker-${ID}.scope/init`, { runtime: DOCKER, id: ID }],
    [
      'Kubernetes + containerd, systemd',
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UNDERSCORED_UID}.slice/cri-containerd-${ID}.scope`,
      { runtime: CONTAINERD, id: ID },
    ],
    [
      'Kubernetes guaranteed QoS, systemd',
      `/kubepods.slice/kubepods-pod${UNDERSCORED_UID}.slice/cri-containerd-${ID}.scope`,
      { runtime: CONTAINERD, id: ID },
    ],
    ['Kubernetes, cgroupfs', `/kubepods/burstable/pod${POD_UID}/${ID}`, { runtime: CONTAINERD, id: ID }],
    ['Kubernetes guaranteed, cgroupfs', `/kubepods/pod${POD_UID}/${ID}`, { runtime: CONTAINERD, id: ID }],
    [
      'Kubernetes + cri-dockerd, systemd',
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UNDERSCORED_UID}.slice/docker-${ID}.scope`,
      { runtime: DOCKER, id: ID },
    ],
    [
      'cri-o, systemd',
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UNDERSCORED_UID}.slice/crio-${ID}.scope`,
      { runtime: CRIO, id: ID },
    ],
    ['cri-o, cgroupfs', `/kubepods/besteffort/pod${POD_UID}/crio-${ID}`, { runtime: CRIO, id: ID }],
    ['cri-o conmon is a host unit', `/system.slice/crio-conmon-${ID}.scope`, { runtime: SYSTEMD, id: `crio-conmon-${ID}.scope` }],
    ['podman, systemd', `/machine.slice/libpod-${ID}.scope`, { runtime: PODMAN, id: ID }],
    ['podman in a pod', `/machine.slice/machine-libpod_pod_${'1'.repeat(64)}.slice/libpod-${ID}.scope`, { runtime: PODMAN, id: ID }],
    ['podman, systemd mode (v2)', `/machine.slice/libpod-${ID}.scope/container`, { runtime: PODMAN, id: ID }],
    ['podman, cgroupfs', `/libpod_parent/libpod-${ID}`, { runtime: PODMAN, id: ID }],
    [
      'podman rootless',
      `/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope`,
      { runtime: PODMAN, id: ID },
    ],
    ['podman conmon is a host unit', `/machine.slice/libpod-conmon-${ID}.scope`, { runtime: SYSTEMD, id: `libpod-conmon-${ID}.scope` }],
    [
      'nested: a pod in a kind node (a docker container)',
      `/system.slice/docker-${'9'.repeat(64)}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UNDERSCORED_UID}.slice/cri-containerd-${ID}.scope`,
      { runtime: CONTAINERD, id: ID },
    ],
    ['a container id under an unknown parent', `/actions_job/${ID}`, { runtime: UNKNOWN, id: ID }],
    ['a systemd service', '/system.slice/nginx.service', { runtime: SYSTEMD, id: 'nginx.service' }],
    ['a delegated service sub-cgroup', '/system.slice/containerd.service/payload', { runtime: SYSTEMD, id: 'containerd.service' }],
    ['a user service', '/user.slice/user-1000.slice/user@1000.service/app.slice/syncthing.service', { runtime: SYSTEMD, id: 'syncthing.service' }],
    ['a login session', '/user.slice/user-1000.slice/session-3.scope', { runtime: SYSTEMD, id: 'session-3.scope' }],
    ['init', '/init.scope', { runtime: SYSTEMD, id: 'init.scope' }],
    ['the root cgroup', '/', { runtime: HOST, id: 'host' }],
    ['a slice only', '/system.slice', { runtime: HOST, id: 'host' }],
    ['an unknown layout', '/process_api/a32f5cc28d0fc453af370cea6d74fd1c', { runtime: HOST, id: 'host' }],
    ['a short hex name is no container id', `/docker/${ID.slice(0, 12)}`, { runtime: HOST, id: 'host' }],
  ];
  for (const [name, path, expected] of cases) {
    it(name, () => assert.deepEqual(containerOfCgroup(path), expected));
  }

  it('an unknown cgroup is undefined', () => {
    assert.equal(containerOfCgroup(''), undefined);
  });

  it('containerOfProcess: a container in either hierarchy wins over the v2 unit', () => {
    assert.deepEqual(containerOfProcess({ cgroupPath: '/system.slice/containerd.service', cgroupV1Path: `/docker/${ID}` }), {
      runtime: DOCKER,
      id: ID,
    });
    assert.deepEqual(containerOfProcess({ cgroupPath: `/system.slice/docker-${ID}.scope`, cgroupV1Path: '/' }), { runtime: DOCKER, id: ID });
    assert.deepEqual(containerOfProcess({ cgroupPath: '/system.slice/nginx.service', cgroupV1Path: '/system.slice/nginx.service' }), {
      runtime: SYSTEMD,
      id: 'nginx.service',
    });
    assert.deepEqual(containerOfProcess({ cgroupPath: '', cgroupV1Path: '/user.slice' }), { runtime: HOST, id: 'host' });
    assert.equal(containerOfProcess({ cgroupPath: '', cgroupV1Path: '' }), undefined);
  });
});

describe('readContainerMetadata on a fake host', () => {
  let host: FakeHost;
  let paths: HostPaths;
  before(() => {
    host = buildFakeHost();
    paths = resolveHostPaths(host.root);
  });
  after(() => host.remove());

  it('docker: name without its slash, the image as asked for, no pod', () => {
    assert.deepEqual(readContainerMetadata(paths, DOCKER, DOCKER_ID), { name: 'web', image: 'nginx:1.25', podName: '', podNamespace: '', podUid: '' });
  });

  it('docker under Kubernetes (cri-dockerd): the io.kubernetes.* labels', () => {
    assert.deepEqual(readContainerMetadata(paths, DOCKER, DOCKER_K8S_ID), {
      name: 'app',
      image: `registry.example/shop/app@sha256:${'2'.repeat(64)}`,
      podName: 'shop-0',
      podNamespace: 'shop',
      podUid: POD_UID,
    });
  });

  it('containerd (CRI): the sandbox annotations', () => {
    assert.deepEqual(readContainerMetadata(paths, CONTAINERD, CONTAINERD_ID), {
      name: 'coredns',
      image: 'registry.k8s.io/coredns/coredns:v1.11.1',
      podName: 'coredns-5d78c9869d-x7k2p',
      podNamespace: 'kube-system',
      podUid: POD_UID,
    });
  });

  it('containerd outside Kubernetes: another namespace, nerdctl\'s name', () => {
    assert.deepEqual(readContainerMetadata(paths, CONTAINERD, NERDCTL_ID), { name: 'redis', image: '', podName: '', podNamespace: '', podUid: '' });
  });

  it('cri-o: the labels kept as one JSON annotation, and its image name', () => {
    assert.deepEqual(readContainerMetadata(paths, CRIO, CRIO_ID), {
      name: 'api',
      image: 'quay.io/shop/api:2.0',
      podName: 'api-7d9f8b-qx2lz',
      podNamespace: 'shop',
      podUid: POD_UID,
    });
  });

  it('podman: name and image from containers/storage\'s record', () => {
    assert.deepEqual(readContainerMetadata(paths, PODMAN, PODMAN_ID), {
      name: 'db',
      image: 'docker.io/library/postgres:16',
      podName: '',
      podNamespace: '',
      podUid: '',
    });
  });

  it('an unknown runtime is looked for in every store', () => {
    assert.equal(readContainerMetadata(paths, UNKNOWN, CONTAINERD_ID).name, 'coredns');
    assert.equal(readContainerMetadata(paths, UNKNOWN, DOCKER_ID).name, 'web');
    assert.equal(readContainerMetadata(paths, UNKNOWN, PODMAN_ID).name, 'db');
  });

  it('missing, corrupt, unsafe or host ids give empty fields, never an exception', () => {
    const empty = { name: '', image: '', podName: '', podNamespace: '', podUid: '' };
    assert.deepEqual(readContainerMetadata(paths, DOCKER, BROKEN_ID), empty);
    assert.deepEqual(readContainerMetadata(paths, DOCKER, 'f'.repeat(64)), empty);
    assert.deepEqual(readContainerMetadata(paths, CRIO, DOCKER_ID), empty);
    assert.deepEqual(readContainerMetadata(paths, DOCKER, '../../../etc'), empty);
    assert.deepEqual(readContainerMetadata(paths, SYSTEMD, 'nginx.service'), empty);
    assert.deepEqual(readContainerMetadata(paths, HOST, 'host'), empty);
    const unreadable = resolveHostPaths(host.root);
    unreadable.docker = '/dev/null';
    assert.deepEqual(readContainerMetadata(unreadable, DOCKER, 'e'.repeat(64)), empty);
  });

  it('caches what it found, and not what it missed', () => {
    const id = 'd'.repeat(64);
    const file = join(host.root, 'var/lib/docker/containers', id, 'config.v2.json');
    assert.equal(readContainerMetadata(paths, DOCKER, id).name, '');
    // The runtime writes its state: the next look finds it.
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify({ Name: '/late', Config: { Image: 'alpine:3' } }));
    assert.equal(readContainerMetadata(paths, DOCKER, id).name, 'late');
    // Found metadata is not read again.
    writeFileSync(file, JSON.stringify({ Name: '/renamed', Config: { Image: 'alpine:3' } }));
    assert.equal(readContainerMetadata(paths, DOCKER, id).name, 'late');
  });

  it('ties the fake host\'s processes to their containers', () => {
    const containers = scanProcesses(paths).map((p) => [p.pid, containerOfProcess(p)] as const);
    assert.deepEqual(Object.fromEntries(containers), {
      1: { runtime: SYSTEMD, id: 'init.scope' },
      2: { runtime: HOST, id: 'host' },
      100: { runtime: SYSTEMD, id: 'nginx.service' },
      101: { runtime: SYSTEMD, id: 'nginx.service' },
      150: { runtime: SYSTEMD, id: 'session-3.scope' },
      200: { runtime: DOCKER, id: DOCKER_ID },
      201: { runtime: DOCKER, id: DOCKER_ID },
      300: { runtime: CONTAINERD, id: CONTAINERD_ID },
    });
  });
});
