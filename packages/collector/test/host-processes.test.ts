// The process scan over a fake /proc: every field, the processes it must leave out, and the
// parsers on their own.

import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  CMDLINE_MAX_BYTES,
  type HostPaths,
  type ProcessRecord,
  clockTicksPerSecond,
  formatCmdline,
  listPids,
  parseCgroupFile,
  parseNsLink,
  parseRealUid,
  parseStat,
  readProcess,
  resolveHostPaths,
  scanProcesses,
} from '../src/host/index.js';
import {
  CONTAINERD_ID,
  DOCKER_ID,
  DOCKER_NETNS,
  type FakeHost,
  HOST_NETNS,
  POD_NETNS,
  POD_UID,
  VANISHED_PID,
  buildFakeHost,
} from './fixtures/host/fake-host.js';

describe('scanProcesses on a fake host', () => {
  let host: FakeHost;
  let paths: HostPaths;
  let byPid: Map<number, ProcessRecord>;
  const tickNs = () => 1e9 / clockTicksPerSecond();
  const cgroupIno = (path: string) => statSync(`${paths.cgroupRoot}${path}`).ino;

  before(() => {
    host = buildFakeHost();
    paths = resolveHostPaths(host.root);
    byPid = new Map(scanProcesses(paths).map((p) => [p.pid, p]));
  });
  after(() => host.remove());

  it('lists processes, not the other entries of /proc, and leaves out the vanished and the zombie', () => {
    assert.deepEqual([...byPid.keys()].sort((a, b) => a - b), [1, 2, 100, 101, 150, 200, 201, 300]);
    assert.equal(readProcess(paths, VANISHED_PID), undefined);
    assert.equal(readProcess(paths, 203), undefined);
    assert.equal(readProcess(paths, 99999), undefined);
  });

  it('reads init', () => {
    assert.deepEqual(byPid.get(1), {
      pid: 1,
      ppid: 0,
      uid: 0,
      comm: 'systemd',
      cmdline: '/sbin/init splash',
      startTimeNs: tickNs(),
      cgroupPath: '/init.scope',
      cgroupV1Path: '/init.scope',
      cgroupId: cgroupIno('/init.scope'),
      netns: HOST_NETNS,
    });
  });

  it('reads a kernel thread: no command line, the root cgroup', () => {
    const p = byPid.get(2)!;
    assert.equal(p.comm, 'kthreadd');
    assert.equal(p.cmdline, '');
    assert.equal(p.cgroupPath, '/');
    assert.equal(p.cgroupId, statSync(paths.cgroupRoot).ino);
  });

  it('trims the NULs of a rewritten argv', () => {
    assert.equal(byPid.get(100)!.cmdline, 'nginx: master process /usr/sbin/nginx');
    assert.equal(byPid.get(101)!.cmdline, 'nginx: worker process');
    assert.equal(byPid.get(101)!.uid, 33);
    assert.equal(byPid.get(101)!.ppid, 100);
    assert.equal(byPid.get(101)!.startTimeNs, 1240 * tickNs());
  });

  it('keeps a comm with spaces and parentheses, the real uid, and a bounded command line', () => {
    const p = byPid.get(150)!;
    assert.equal(p.comm, 'my (weird) comm');
    assert.equal(p.ppid, 1);
    assert.equal(p.uid, 1000);
    assert.equal(p.startTimeNs, 98765 * tickNs());
    assert.equal(p.cmdline.length, CMDLINE_MAX_BYTES);
    assert.equal(p.cmdline, ('python3 ' + 'x'.repeat(5000)).slice(0, CMDLINE_MAX_BYTES));
  });

  it('reads containerized processes with their network namespace and cgroup', () => {
    const scope = `/system.slice/docker-${DOCKER_ID}.scope`;
    assert.deepEqual(byPid.get(200), {
      pid: 200,
      ppid: 190,
      uid: 0,
      comm: 'curl',
      cmdline: 'curl -s http://10.0.0.5/',
      startTimeNs: 50000 * tickNs(),
      cgroupPath: scope,
      cgroupV1Path: scope,
      cgroupId: cgroupIno(scope),
      netns: DOCKER_NETNS,
    });
    const pod = byPid.get(300)!;
    assert.equal(pod.cgroupPath, '/system.slice/containerd.service');
    assert.equal(pod.cgroupV1Path, `/kubepods/burstable/pod${POD_UID}/${CONTAINERD_ID}`);
    assert.equal(pod.cgroupId, cgroupIno('/system.slice/containerd.service'));
    assert.equal(pod.netns, POD_NETNS);
    assert.equal(pod.uid, 65532);
  });

  it('lists only numeric entries', () => {
    assert.deepEqual(listPids(paths.proc).sort((a, b) => a - b), [1, 2, 100, 101, 150, 200, 201, VANISHED_PID, 203, 300]);
  });
});

describe('process file parsers', () => {
  it('parseStat: a real line of this machine', () => {
    const line =
      '20207 (cat) R 20163 20163 19265 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 198178 3133440 381 18446744073709551615 ' +
      '94213234704384 94213234724265 140732922459008 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94213234740272 94213234741888 ' +
      '94213593849856 140732922464990 140732922465010 140732922465010 140732922466283 0\n';
    assert.deepEqual(parseStat(line), { comm: 'cat', ppid: 20163, startTicks: 198178 });
  });

  it('parseStat: a comm that looks like more fields', () => {
    assert.deepEqual(parseStat('42 (a) S 1 (b) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0\n'), {
      comm: 'a) S 1 (b',
      ppid: 7,
      startTicks: 555,
    });
  });

  it('parseRealUid takes the first of real, effective, saved, fs', () => {
    assert.equal(parseRealUid('Name:\tsudo\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n'), 1000);
    assert.equal(parseRealUid('Name:\tx\n'), 0);
  });

  it('formatCmdline joins arguments with spaces and drops trailing NULs', () => {
    assert.equal(formatCmdline(Buffer.from('ls\0-l\0/tmp dir\0')), 'ls -l /tmp dir');
    assert.equal(formatCmdline(Buffer.from('')), '');
    assert.equal(formatCmdline(Buffer.from('a\0\0b\0')), 'a  b');
  });

  it('parseCgroupFile: v2 line, longest v1 path, pure v1 and pure v2 hosts', () => {
    assert.deepEqual(
      parseCgroupFile('9:name=systemd:/\n8:pids:/\n4:memory:/process_api/a32f5cc28d0fc453af370cea6d74fd1c\n1:cpu:/\n0::/\n'),
      { v2: '/', v1: '/process_api/a32f5cc28d0fc453af370cea6d74fd1c' },
    );
    assert.deepEqual(parseCgroupFile('0::/system.slice/sshd.service\n'), { v2: '/system.slice/sshd.service', v1: '' });
    assert.deepEqual(parseCgroupFile('11:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n'), { v2: '', v1: '/docker/abc' });
  });

  it('parseNsLink', () => {
    assert.equal(parseNsLink('net:[4026531993]'), 4026531993);
    assert.equal(parseNsLink('net:[]'), 0);
    assert.equal(parseNsLink('/dev/null'), 0);
  });

  it('clockTicksPerSecond reads AT_CLKTCK (100 on this machine)', () => {
    assert.equal(clockTicksPerSecond(), 100);
  });
});
