// Host paths: the host directory prefix and the cgroup2 mount point, on a fake host tree and on
// this machine (a hybrid cgroup layout: cgroup2 at /sys/fs/cgroup/unified).

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_HOST_DIR, HOST_DIR_ENV, HostDirMissingError, cgroup2MountPoint, resolveHostPaths } from '../src/host/index.js';
import { CGROUP2_MOUNT, type FakeHost, buildFakeHost } from './fixtures/host/fake-host.js';

describe('resolveHostPaths', () => {
  let host: FakeHost;
  before(() => {
    host = buildFakeHost();
  });
  after(() => host.remove());

  it('prefixes every path with the host directory and finds cgroup2 in init\'s mount table', () => {
    assert.deepEqual(resolveHostPaths(host.root), {
      root: host.root,
      proc: `${host.root}/proc`,
      cgroupRoot: `${host.root}${CGROUP2_MOUNT}`,
      etc: `${host.root}/etc`,
      docker: `${host.root}/var/lib/docker`,
      containerdState: `${host.root}/run/containerd`,
      containersRunRoot: `${host.root}/run/containers/storage`,
      containersGraphRoot: `${host.root}/var/lib/containers/storage`,
    });
  });

  it('takes the host directory from EBPF_NET_HOST_DIR, trailing slash or not', () => {
    const saved = process.env[HOST_DIR_ENV];
    process.env[HOST_DIR_ENV] = `${host.root}/`;
    try {
      assert.equal(resolveHostPaths().root, host.root);
    } finally {
      if (saved === undefined) delete process.env[HOST_DIR_ENV];
      else process.env[HOST_DIR_ENV] = saved;
    }
  });

  it('falls back to /sys/fs/cgroup when no mount table shows cgroup2', () => {
    const bare = mkdtempSync(join(tmpdir(), 'ebpf-net-bare-host-'));
    try {
      assert.equal(resolveHostPaths(bare).cgroupRoot, `${bare}/sys/fs/cgroup`);
    } finally {
      rmSync(bare, { recursive: true });
    }
  });

  it('refuses a host directory named explicitly that does not exist', () => {
    assert.throws(() => resolveHostPaths('/nonexistent/hostfs'), (err: unknown) => {
      assert.ok(err instanceof HostDirMissingError);
      assert.equal(err.path, '/nonexistent/hostfs');
      assert.match(err.message, /EBPF_NET_HOST_DIR/);
      return true;
    });
  });

  it('reads this machine directly when the default host directory is absent', (t) => {
    if (existsSync(DEFAULT_HOST_DIR) || process.env[HOST_DIR_ENV]) return t.skip(`${DEFAULT_HOST_DIR} or ${HOST_DIR_ENV} is set here`);
    const paths = resolveHostPaths();
    assert.equal(paths.root, '');
    assert.equal(paths.proc, '/proc');
    assert.equal(paths.cgroupRoot, cgroup2MountPoint(readFileSync('/proc/self/mounts', 'utf8')) ?? '/sys/fs/cgroup');
    assert.deepEqual(resolveHostPaths('/'), paths);
    assert.deepEqual(resolveHostPaths(''), paths);
  });

  it('reads the host itself when told \'\', even where the default host directory exists', () => {
    const saved = process.env[HOST_DIR_ENV];
    process.env[HOST_DIR_ENV] = '';
    try {
      assert.equal(resolveHostPaths().root, '');
      assert.equal(resolveHostPaths('').proc, '/proc');
    } finally {
      if (saved === undefined) delete process.env[HOST_DIR_ENV];
      else process.env[HOST_DIR_ENV] = saved;
    }
  });
});

describe('cgroup2MountPoint', () => {
  it('finds the hybrid layout\'s unified mount', () => {
    const hybrid =
      'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n' +
      'cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n' +
      'cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n' +
      'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n';
    assert.equal(cgroup2MountPoint(hybrid), '/sys/fs/cgroup/unified');
  });

  it('prefers the hierarchy root to a bind mount of a sub-tree, and decodes octal escapes', () => {
    const table =
      'cgroup2 /var/lib/kubelet/my\\040cgroup cgroup2 rw 0 0\n' + 'cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate,memory_recursiveprot 0 0\n';
    assert.equal(cgroup2MountPoint(table), '/sys/fs/cgroup');
    assert.equal(cgroup2MountPoint('cgroup2 /a\\040b cgroup2 rw 0 0\n'), '/a b');
  });

  it('says undefined on a pure v1 host', () => {
    assert.equal(cgroup2MountPoint('cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n'), undefined);
  });
});
