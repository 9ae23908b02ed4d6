// Socket tables: the parser on tables copied from this machine's /proc/net, then the scan of a
// fake host with two network namespaces (owners, roles, what is left out).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type HostPaths,
  type ProcessRecord,
  type SocketRecord,
  formatIpv4Hex,
  formatIpv6Hex,
  parseSocketTable,
  resolveHostPaths,
  scanProcesses,
  scanSockets,
  socketOwners,
} from '../src/host/index.js';
import { DOCKER_NETNS, FAKE_PROCESSES, type FakeHost, HOST_NETNS, addressHex, buildFakeHost } from './fixtures/host/fake-host.js';
import { REAL_TCP, REAL_TCP6, REAL_UDP, REAL_UDP6 } from './fixtures/host/proc-net-samples.js';

const TCP = 6;
const UDP = 17;
const INET = 2;
const INET6 = 10;
const ROLE = { UNKNOWN: 0, CLIENT: 1, SERVER: 2, LISTENER: 3 } as const;

describe('parseSocketTable on real tables', () => {
  it('tcp: the listener and the connection, not the TIME_WAIT entries', () => {
    assert.deepEqual(parseSocketTable(REAL_TCP, TCP, INET), [
      { protocol: TCP, family: INET, localAddr: '0.0.0.0', localPort: 2024, remoteAddr: '0.0.0.0', remotePort: 0, state: 10, uid: 0, inode: 1215 },
      { protocol: TCP, family: INET, localAddr: '127.0.0.1', localPort: 51628, remoteAddr: '127.0.0.1', remotePort: 34053, state: 1, uid: 0, inode: 47446 },
    ]);
  });

  it('tcp6: loopback, the unspecified address, and IPv4-mapped peers as dotted quads', () => {
    assert.deepEqual(parseSocketTable(REAL_TCP6, TCP, INET6), [
      { protocol: TCP, family: INET6, localAddr: '::1', localPort: 44213, remoteAddr: '::', remotePort: 0, state: 10, uid: 0, inode: 47442 },
      { protocol: TCP, family: INET6, localAddr: '::', localPort: 34053, remoteAddr: '::', remotePort: 0, state: 10, uid: 0, inode: 47445 },
      { protocol: TCP, family: INET6, localAddr: '::1', localPort: 44213, remoteAddr: '::1', remotePort: 43896, state: 1, uid: 0, inode: 47444 },
      { protocol: TCP, family: INET6, localAddr: '::1', localPort: 43896, remoteAddr: '::1', remotePort: 44213, state: 1, uid: 0, inode: 47443 },
      { protocol: TCP, family: INET6, localAddr: '127.0.0.1', localPort: 34053, remoteAddr: '127.0.0.1', remotePort: 51628, state: 1, uid: 0, inode: 47447 },
    ]);
  });

  it('udp and udp6: connected and unconnected', () => {
    assert.deepEqual(parseSocketTable(REAL_UDP, UDP, INET), [
      { protocol: UDP, family: INET, localAddr: '127.0.0.1', localPort: 33922, remoteAddr: '127.0.0.2', remotePort: 53, state: 1, uid: 0, inode: 47448 },
    ]);
    assert.deepEqual(parseSocketTable(REAL_UDP6, UDP, INET6), [
      { protocol: UDP, family: INET6, localAddr: '::1', localPort: 51055, remoteAddr: '::', remotePort: 0, state: 7, uid: 0, inode: 47449 },
    ]);
  });

  it('an empty table, or only a header', () => {
    assert.deepEqual(parseSocketTable('', TCP, INET), []);
    assert.deepEqual(parseSocketTable(REAL_TCP.slice(0, REAL_TCP.indexOf('\n') + 1), TCP, INET), []);
  });
});

describe('address words', () => {
  it('IPv4: one little-endian u32', () => {
    assert.equal(formatIpv4Hex('0100007F'), '127.0.0.1');
    assert.equal(formatIpv4Hex('0500000A'), '10.0.0.5');
    assert.equal(formatIpv4Hex('FFFFFFFF'), '255.255.255.255');
  });

  it('IPv6: four little-endian u32 words', () => {
    assert.equal(formatIpv6Hex('00000000000000000000000001000000'), '::1');
    assert.equal(formatIpv6Hex('0000000000000000FFFF00000100007F'), '127.0.0.1');
    assert.equal(formatIpv6Hex('B80D0120000000000000000005000000'), '2001:db8::5');
    assert.equal(formatIpv6Hex('000080FE000000000000000001000000'), 'fe80::1');
  });

  it('the fake host writes addresses as the kernel does', () => {
    assert.equal(addressHex('127.0.0.1'), '0100007F');
    assert.equal(addressHex('::1'), '00000000000000000000000001000000');
    assert.equal(addressHex('::ffff:127.0.0.1'), '0000000000000000FFFF00000100007F');
    assert.equal(addressHex('2001:db8::5'), 'B80D0120000000000000000005000000');
  });
});

describe('scanSockets on a fake host', () => {
  let host: FakeHost;
  let paths: HostPaths;
  let processes: ProcessRecord[];

  before(() => {
    host = buildFakeHost();
    paths = resolveHostPaths(host.root);
    processes = scanProcesses(paths);
  });
  after(() => host.remove());

  const sock = (
    netns: number,
    protocol: number,
    family: number,
    local: [string, number],
    remote: [string, number],
    state: number,
    inode: number,
    pid: number,
    role: number,
    uid = 0,
  ) => ({ protocol, family, localAddr: local[0], localPort: local[1], remoteAddr: remote[0], remotePort: remote[1], state, uid, inode, netns, pid, fd: fdOf(pid, inode), role });

  /** The descriptor of `inode` in the fake /proc/<pid>/fd (-1: no owner). */
  const fdOf = (pid: number, inode: number): number => {
    const fds = FAKE_PROCESSES.find((p) => p.pid === pid)?.fds ?? {};
    const entry = Object.entries(fds).find(([, target]) => target === `socket:[${inode}]`);
    return entry ? Number(entry[0]) : -1;
  };

  const byInode = (records: SocketRecord[]) => [...records].sort((a, b) => a.inode - b.inode);

  it('finds every socket of every namespace with its owner and role', () => {
    const H = HOST_NETNS;
    const D = DOCKER_NETNS;
    assert.deepEqual(byInode(scanSockets(paths, processes)), [
      // nginx: the listeners go to the master, which forked the worker that shares them.
      sock(H, TCP, INET, ['0.0.0.0', 80], ['0.0.0.0', 0], 10, 1001, 100, ROLE.LISTENER),
      sock(H, TCP, INET6, ['::', 80], ['::', 0], 10, 1002, 100, ROLE.LISTENER),
      sock(H, TCP, INET, ['10.0.0.5', 80], ['10.0.0.10', 55178], 1, 1003, 101, ROLE.SERVER, 33),
      sock(H, TCP, INET, ['127.0.0.1', 40000], ['127.0.0.1', 5432], 1, 1004, 101, ROLE.CLIENT, 33),
      // Held by no process we could see.
      sock(H, TCP, INET, ['10.0.0.5', 41000], ['93.184.216.34', 443], 2, 1005, 0, ROLE.CLIENT, 1000),
      // Accepted by the dual-stack listener: an IPv6 socket with IPv4-mapped addresses.
      sock(H, TCP, INET6, ['10.0.0.5', 80], ['10.0.0.11', 50000], 8, 1006, 101, ROLE.SERVER, 33),
      sock(H, TCP, INET6, ['2001:db8::5', 51000], ['2001:db8::2', 443], 1, 1007, 150, ROLE.CLIENT, 1000),
      sock(H, UDP, INET, ['0.0.0.0', 53], ['0.0.0.0', 0], 7, 1101, 1, ROLE.UNKNOWN),
      sock(H, UDP, INET, ['10.0.0.5', 53], ['10.0.0.12', 33333], 1, 1102, 1, ROLE.SERVER),
      sock(H, UDP, INET6, ['fe80::1', 546], ['::', 0], 7, 1103, 0, ROLE.UNKNOWN),
      // The container's namespace has no IPv6 tables.
      sock(D, TCP, INET, ['172.17.0.2', 46000], ['10.0.0.5', 80], 1, 2001, 200, ROLE.CLIENT),
      sock(D, UDP, INET, ['172.17.0.2', 45000], ['10.96.0.10', 53], 1, 2002, 200, ROLE.CLIENT),
      sock(D, TCP, INET, ['172.17.0.2', 8080], ['0.0.0.0', 0], 10, 2003, 201, ROLE.LISTENER),
      sock(D, TCP, INET, ['172.17.0.2', 8080], ['172.17.0.1', 60000], 8, 2004, 201, ROLE.SERVER),
      sock(D, TCP, INET, ['0.0.0.0', 9000], ['0.0.0.0', 0], 7, 2005, 0, ROLE.UNKNOWN),
    ]);
  });

  it('reads a namespace through another of its processes when the first one is gone', () => {
    const gone: ProcessRecord = { ...processes.find((p) => p.pid === 200)!, pid: 99999 };
    const records = scanSockets(paths, [gone, ...processes]);
    assert.deepEqual(
      records.filter((s) => s.netns === DOCKER_NETNS).map((s) => s.inode).sort(),
      [2001, 2002, 2003, 2004, 2005],
    );
  });

  it('gives a socket shared across fork() to the parent, whatever the order', () => {
    const reversed = [...processes].reverse();
    const owners = socketOwners(paths.proc, reversed);
    assert.deepEqual(owners.get(1001), { pid: 100, fd: 6 });
    assert.equal(owners.get(1003)?.pid, 101);
    assert.equal(owners.get(2003)?.pid, 201);
    assert.equal(owners.has(1005), false);
  });

  it('sees nothing of processes it was not given', () => {
    assert.deepEqual(scanSockets(paths, []), []);
  });
});
