// The inventory against this machine: the test process finds itself, its own TCP and UDP sockets
// with their roles, and a listener in a network namespace it makes. The namespace part needs root
// and `ip`.

import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { type AddressInfo, type Server, type Socket, createConnection, createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type HostPaths, type ProcessRecord, type SocketRecord, resolveHostPaths, scanProcesses, scanSockets } from '../src/host/index.js';

const ROLE = { UNKNOWN: 0, CLIENT: 1, SERVER: 2, LISTENER: 3 } as const;

function timed<T>(f: () => T): [T, number] {
  const start = process.hrtime.bigint();
  const result = f();
  return [result, Number(process.hrtime.bigint() - start) / 1e6];
}

/** A listening server on `host` and one connection to it, both ends open. */
async function connectedPair(host: string, listenHost = host): Promise<{ server: Server; client: Socket; accepted: Socket }> {
  const server = createServer();
  server.listen(0, listenHost);
  await once(server, 'listening');
  const acceptedP = once(server, 'connection') as Promise<[Socket]>;
  const client = createConnection((server.address() as AddressInfo).port, host);
  await once(client, 'connect');
  const [accepted] = await acceptedP;
  return { server, client, accepted };
}

describe('on this machine', () => {
  let paths: HostPaths;
  let processes: ProcessRecord[];
  let sockets: SocketRecord[];
  const servers: Server[] = [];
  const streams: Socket[] = [];
  const dgrams: UdpSocket[] = [];
  let v4: { server: Server; client: Socket; accepted: Socket };
  let v6: { server: Server; client: Socket; accepted: Socket } | undefined;
  let dual: { server: Server; client: Socket; accepted: Socket } | undefined;
  let udpBound: UdpSocket;
  let udpConnected: UdpSocket;
  let processMs: number;
  let socketMs: number;

  before(async () => {
    v4 = await connectedPair('127.0.0.1');
    try {
      v6 = await connectedPair('::1');
      // A dual-stack listener takes an IPv4 client: its accepted socket is IPv6, with mapped addresses.
      dual = await connectedPair('127.0.0.1', '::');
    } catch {
      // No IPv6 here: the v6 checks skip.
    }
    for (const pair of [v4, v6, dual]) {
      if (pair === undefined) continue;
      servers.push(pair.server);
      streams.push(pair.client, pair.accepted);
    }
    udpBound = createSocket('udp4');
    udpBound.bind(0, '127.0.0.1');
    await once(udpBound, 'listening');
    udpConnected = createSocket('udp4');
    udpConnected.connect(udpBound.address().port, '127.0.0.1');
    await once(udpConnected, 'connect');
    dgrams.push(udpBound, udpConnected);

    paths = resolveHostPaths();
    [processes, processMs] = timed(() => scanProcesses(paths));
    [sockets, socketMs] = timed(() => scanSockets(paths, processes));
  });

  after(() => {
    for (const s of streams) s.destroy();
    for (const s of servers) s.close();
    for (const d of dgrams) d.close();
  });

  const ownSocket = (protocol: number, localPort: number, remotePort: number) =>
    sockets.find((s) => s.pid === process.pid && s.protocol === protocol && s.localPort === localPort && s.remotePort === remotePort);

  it('scans the host', (t) => {
    t.diagnostic(`${processes.length} processes in ${processMs.toFixed(1)} ms, ${sockets.length} sockets in ${socketMs.toFixed(1)} ms`);
    assert.ok(processes.length > 1);
    assert.ok(sockets.length >= 9, 'at least the test\'s own sockets');
  });

  it('finds the test process with its comm, command line, cgroup and namespace', () => {
    const me = processes.find((p) => p.pid === process.pid);
    assert.ok(me, 'the test process is in the scan');
    assert.equal(me.ppid, process.ppid);
    assert.equal(me.uid, process.getuid!());
    assert.equal(me.comm, readFileSync('/proc/self/comm', 'utf8').trimEnd());
    assert.equal(me.comm, 'node');
    // Node keeps the arguments it was started with in process.argv (execPath first) and execArgv.
    assert.equal(me.cmdline, [process.argv0, ...process.execArgv, ...process.argv.slice(1)].join(' '));
    assert.equal(me.cgroupId, statSync(paths.cgroupRoot + me.cgroupPath).ino);
    assert.notEqual(me.cgroupId, 0);
    assert.equal(me.netns, Number(/\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'))![1]));
    // Started process.uptime() ago, at the resolution of a clock tick.
    const uptimeS = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    assert.ok(Math.abs(me.startTimeNs / 1e9 - (uptimeS - process.uptime())) < 0.5, `start ${me.startTimeNs} ns after boot`);
  });

  it('finds the IPv4 listener, the client end and the accepted end, all held by this process', () => {
    const port = (v4.server.address() as AddressInfo).port;
    const clientPort = v4.client.localPort!;
    assert.deepEqual(pick(ownSocket(6, port, 0)), { family: 2, localAddr: '127.0.0.1', remoteAddr: '0.0.0.0', state: 10, role: ROLE.LISTENER });
    assert.deepEqual(pick(ownSocket(6, clientPort, port)), { family: 2, localAddr: '127.0.0.1', remoteAddr: '127.0.0.1', state: 1, role: ROLE.CLIENT });
    assert.deepEqual(pick(ownSocket(6, port, clientPort)), { family: 2, localAddr: '127.0.0.1', remoteAddr: '127.0.0.1', state: 1, role: ROLE.SERVER });
  });

  it('finds IPv6 sockets, and IPv4 peers of a dual-stack listener as dotted quads', (t) => {
    if (v6 === undefined || dual === undefined) return t.skip('no IPv6 loopback here');
    const port = (v6.server.address() as AddressInfo).port;
    const clientPort = v6.client.localPort!;
    assert.deepEqual(pick(ownSocket(6, port, 0)), { family: 10, localAddr: '::1', remoteAddr: '::', state: 10, role: ROLE.LISTENER });
    assert.deepEqual(pick(ownSocket(6, clientPort, port)), { family: 10, localAddr: '::1', remoteAddr: '::1', state: 1, role: ROLE.CLIENT });
    assert.deepEqual(pick(ownSocket(6, port, clientPort)), { family: 10, localAddr: '::1', remoteAddr: '::1', state: 1, role: ROLE.SERVER });
    const dualPort = (dual.server.address() as AddressInfo).port;
    const dualClient = dual.client.localPort!;
    assert.deepEqual(pick(ownSocket(6, dualPort, 0)), { family: 10, localAddr: '::', remoteAddr: '::', state: 10, role: ROLE.LISTENER });
    assert.deepEqual(pick(ownSocket(6, dualClient, dualPort)), { family: 2, localAddr: '127.0.0.1', remoteAddr: '127.0.0.1', state: 1, role: ROLE.CLIENT });
    assert.deepEqual(pick(ownSocket(6, dualPort, dualClient)), { family: 10, localAddr: '127.0.0.1', remoteAddr: '127.0.0.1', state: 1, role: ROLE.SERVER });
  });

  it('finds the UDP sockets: the bound one (role unknown) and the connected one (a client)', () => {
    const port = udpBound.address().port;
    const connectedPort = udpConnected.address().port;
    assert.deepEqual(pick(ownSocket(17, port, 0)), { family: 2, localAddr: '127.0.0.1', remoteAddr: '0.0.0.0', state: 7, role: ROLE.UNKNOWN });
    assert.deepEqual(pick(ownSocket(17, connectedPort, port)), { family: 2, localAddr: '127.0.0.1', remoteAddr: '127.0.0.1', state: 1, role: ROLE.CLIENT });
  });

  it('every socket it lists is in a namespace of a scanned process, with an inode', () => {
    const namespaces = new Set(processes.map((p) => p.netns));
    for (const s of sockets) {
      assert.ok(namespaces.has(s.netns));
      assert.ok(s.inode > 0);
      assert.notEqual(s.state, 6);
    }
  });
});

describe('in a network namespace of its own', () => {
  const ns = `ebpf-net-host-${process.pid}`;
  const skip = process.getuid?.() !== 0 ? 'needs root: ip netns add' : hasIp() ? false : 'the ip command is missing';
  let child: ChildProcess | undefined;

  after(() => {
    child?.kill('SIGKILL');
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // never created
    }
  });

  it('finds the listener of a process in it, with that namespace\'s inode', { skip }, async (t) => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    const netns = statSync(`/run/netns/${ns}`).ino;
    // ip netns exec execs python in place: the child's pid is the listener's.
    child = spawn(
      'ip',
      ['netns', 'exec', ns, 'python3', '-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen()\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const port = Number(line.toString().trim());

    const paths = resolveHostPaths();
    const processes = scanProcesses(paths);
    const [sockets, ms] = timed(() => scanSockets(paths, processes));
    const found = sockets.filter((s) => s.localPort === port && s.netns === netns);
    assert.deepEqual(
      found.map((s) => ({ pid: s.pid, localAddr: s.localAddr, state: s.state, role: s.role })),
      [{ pid: child.pid, localAddr: '127.0.0.1', state: 10, role: ROLE.LISTENER }],
    );
    assert.equal(processes.find((p) => p.pid === child!.pid)?.netns, netns);
    assert.notEqual(netns, processes.find((p) => p.pid === process.pid)?.netns);
    t.diagnostic(`socket scan over ${new Set(processes.map((p) => p.netns)).size} network namespaces: ${ms.toFixed(1)} ms`);
  });
});

function pick(s: SocketRecord | undefined) {
  assert.ok(s, 'socket found');
  return { family: s.family, localAddr: s.localAddr, remoteAddr: s.remoteAddr, state: s.state, role: s.role };
}

function hasIp(): boolean {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
