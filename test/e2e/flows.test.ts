// Real traffic, real BPF, real reducer: a client and a server in network namespaces of their
// own ("pods"), seen by one collector, then by two collectors that each watch one namespace
// ("two nodes" on one kernel). Exact bytes each way, matched into one flow with both ends.

import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { freePort, isRoot, metricValue, startCollector, startReducer, until, useTestbed } from './support.js';

const skip = !isRoot && 'needs root: loads BPF programs and creates network namespaces';
const N = 300_000;
const M = 120_000;

describe('flows across network namespaces', { skip, timeout: 90_000 }, () => {
  const bed = useTestbed('flows');

  async function stack(collectors: Array<{ name: string; args: string[] }>): Promise<{ http: number; stop: () => Promise<void> }> {
    const ports = { intake: await freePort(), http: await freePort() };
    const reducer = startReducer(ports, join(bed.logs, `${collectors[0]!.name}.db`), bed.logs);
    const started = collectors.map((c) => startCollector(ports.intake, bed.logs, c.name, c.args));
    bed.daemons.push(reducer, ...started);
    await until('the collectors to connect', () => metricValue(ports.http, 'ebpf_net_reducer_collectors', {}), (n) => n === collectors.length);
    return {
      http: ports.http,
      stop: async () => {
        for (const c of started) assert.equal(await c.stop(), 0, `${c.name} exits 0`);
        assert.equal(await reducer.stop(), 0, 'the reducer exits 0');
      },
    };
  }

  async function transfer(port: number): Promise<void> {
    await bed.endpoints.server(bed.pair.b, bed.pair.addrB, port, N, M);
    const { done } = bed.endpoints.client(bed.pair.a, bed.pair.addrB, port, N / 3, 3, 20, M);
    await done;
  }

  test('pods on one node: one collector sees both ends; one flow, exact bytes, the right processes', { timeout: 45_000 }, async () => {
    const { http, stop } = await stack([{ name: 'node', args: [] }]);
    await transfer(8080);
    const node = hostname();
    const forward = { aggregation: 'process', source_node: node, source_process: 'e2e-client', dest_node: node, dest_process: 'e2e-server' };
    const backward = { aggregation: 'process', source_node: node, source_process: 'e2e-server', dest_node: node, dest_process: 'e2e-client' };
    await until('client → server bytes', () => metricValue(http, 'tcp_bytes_total', forward), (v) => v === N);
    await until('server → client bytes', () => metricValue(http, 'tcp_bytes_total', backward), (v) => v === M);
    assert.equal(await metricValue(http, 'tcp_new_sockets_total', forward), 1, 'one connection, though both ends were seen');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await metricValue(http, 'tcp_bytes_total', forward), N, 'and nothing more later');
    await stop();
  });

  test('two nodes: two collectors, each watching one namespace, report the two ends of one flow', { timeout: 45_000 }, async () => {
    const { http, stop } = await stack([
      { name: 'node-a', args: ['--netns', bed.pair.a, '--node-name', 'node-a'] },
      { name: 'node-b', args: ['--netns', bed.pair.b, '--node-name', 'node-b'] },
    ]);
    await transfer(8081);
    const forward = { aggregation: 'process', source_node: 'node-a', source_process: 'e2e-client', dest_node: 'node-b', dest_process: 'e2e-server' };
    const backward = { aggregation: 'process', source_node: 'node-b', source_process: 'e2e-server', dest_node: 'node-a', dest_process: 'e2e-client' };
    await until('node-a → node-b bytes', () => metricValue(http, 'tcp_bytes_total', forward), (v) => v === N);
    await until('node-b → node-a bytes', () => metricValue(http, 'tcp_bytes_total', backward), (v) => v === M);
    const nodeLevel = await metricValue(http, 'tcp_bytes_total', { aggregation: 'node', source_node: 'node-a', dest_node: 'node-b' });
    const series = async () => (await (await fetch(`http://127.0.0.1:${http}/metrics`)).text()).split('\n').filter((l) => l.startsWith('tcp_bytes_total')).join('\n');
    assert.equal(nodeLevel, N, `node level; all series:\n${await series()}`);
    assert.equal(await metricValue(http, 'tcp_bytes_total', { aggregation: 'node', source_node: 'node-a', dest_node: bed.pair.addrB }), undefined, 'no half-matched flow to the bare address');
    assert.equal(await metricValue(http, 'tcp_new_sockets_total', forward), 1);
    await stop();
  });
});
