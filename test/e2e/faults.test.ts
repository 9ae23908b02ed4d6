// Faults, end to end with real BPF: the reducer restarted in the middle of traffic, a collector
// restarted, the reducer down when the collector starts, and garbage from one peer. Totals come
// from the reducer's SQLite store, which outlives its restarts.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { freePort, isRoot, metricValue, startCollector, startReducer, until, useTestbed } from './support.js';

const skip = !isRoot && 'needs root: loads BPF programs and creates network namespaces';
const CHUNK = 10_000;
const CHUNKS = 40;
const EVERY_MS = 100; // 100 kB/s for 4 s
const TOTAL = CHUNK * CHUNKS;
const REPLY = 5_000;
const INTERVAL_MS = 500; // the reducer's interval (see startReducer)

/** Client → server bytes over the last 10 minutes, from the SQLite store through /api/flows. */
async function storedBytes(http: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${http}/api/flows?since=10m&aggregation=process&limit=50`).then((r) => r.json(), () => ({ flows: [] }));
  const flow = (res as { flows: Array<{ source: Record<string, string>; dest: Record<string, string>; total: number }> }).flows.find(
    (f) => f.source.process === 'e2e-client' && f.dest.process === 'e2e-server',
  );
  return flow?.total ?? 0;
}

describe('faults', { skip, timeout: 120_000 }, () => {
  const bed = useTestbed('faults');
  let port = 9000;

  async function ports() {
    return { intake: await freePort(), http: await freePort() };
  }

  /**
   * Starts a transfer at 100 kB/s from the client pod to the server pod (4 s by default);
   * `done` settles when it ends. (Wrapped: an async function would wait for a promise it returns.)
   */
  async function slowTransfer(chunks = CHUNKS): Promise<{ done: Promise<void> }> {
    port++;
    await bed.endpoints.server(bed.pair.b, bed.pair.addrB, port, CHUNK * chunks, REPLY);
    return bed.endpoints.client(bed.pair.a, bed.pair.addrB, port, CHUNK, chunks, EVERY_MS, REPLY);
  }

  test('the reducer restarted in the middle of traffic: flows continue, nothing counted twice, the gap at most one interval', { timeout: 45_000 }, async () => {
    const p = await ports();
    const db = join(bed.logs, 'reducer-restart.db');
    let reducer = startReducer(p, db, bed.logs, 'reducer-1');
    const collector = startCollector(p.intake, bed.logs, 'collector-rr');
    bed.daemons.push(collector);
    await until('the collector to connect', () => metricValue(p.http, 'ebpf_net_reducer_collectors', {}), (n) => n === 1);
    const { done } = await slowTransfer();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await reducer.stop(), 0);
    await new Promise((r) => setTimeout(r, 500));
    reducer = startReducer(p, db, bed.logs, 'reducer-2');
    bed.daemons.push(reducer);
    await done;
    const total = await until('the transfer in the store', () => storedBytes(p.http), (v) => v >= TOTAL - (CHUNK * 1000 / EVERY_MS) * (INTERVAL_MS / 1000), 15_000);
    await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS));
    const settled = await storedBytes(p.http);
    assert.ok(settled <= TOTAL, `nothing counted twice: ${settled} <= ${TOTAL}`);
    assert.ok(settled >= TOTAL - (CHUNK * 1000 / EVERY_MS) * (INTERVAL_MS / 1000), `at most one interval lost: ${settled} of ${TOTAL} (first seen ${total})`);
    assert.equal(await collector.stop(), 0);
  });

  test('a collector restarted: the connection is found again as pre-existing, nothing counted twice', { timeout: 45_000 }, async () => {
    const p = await ports();
    const reducer = startReducer(p, join(bed.logs, 'collector-restart.db'), bed.logs, 'reducer-cr');
    bed.daemons.push(reducer);
    let collector = startCollector(p.intake, bed.logs, 'collector-1');
    await until('the collector to connect', () => metricValue(p.http, 'ebpf_net_reducer_collectors', {}), (n) => n === 1);
    // 10 s of traffic: stopping a collector takes a second or two (last poll, flush, detaching).
    const total = CHUNK * 100;
    const { done } = await slowTransfer(100);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await collector.stop(), 0);
    const before = await storedBytes(p.http);
    collector = startCollector(p.intake, bed.logs, 'collector-2');
    bed.daemons.push(collector);
    await done;
    const node = hostname();
    const forward = { aggregation: 'process', source_node: node, source_process: 'e2e-client', dest_node: node, dest_process: 'e2e-server' };
    await until('the reply counted after the restart', () => metricValue(p.http, 'tcp_bytes_total', { ...forward, source_process: 'e2e-server', dest_process: 'e2e-client' }), (v) => v === REPLY);
    await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS));
    const after = await storedBytes(p.http);
    assert.ok(before > 0 && after > before, `counting went on after the restart: ${before} then ${after}`);
    assert.ok(before < total, `the first collector stopped before the end: ${before} < ${total}`);
    assert.ok(after <= total, `nothing counted twice: ${after} <= ${total}`);
    assert.equal(await metricValue(p.http, 'tcp_new_sockets_total', forward), 1, 'the pre-existing connection is not a new one');
    assert.equal(await collector.stop(), 0);
  });

  test('the reducer down when the collector starts: the collector waits and connects once it is up', { timeout: 45_000 }, async () => {
    const p = await ports();
    const collector = startCollector(p.intake, bed.logs, 'collector-early');
    bed.daemons.push(collector);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(collector.child.exitCode, null, 'still running');
    const reducer = startReducer(p, join(bed.logs, 'late.db'), bed.logs, 'reducer-late');
    bed.daemons.push(reducer);
    await until('the collector to connect', () => metricValue(p.http, 'ebpf_net_reducer_collectors', {}), (n) => n === 1, 30_000);
    port++;
    await bed.endpoints.server(bed.pair.b, bed.pair.addrB, port, 50_000, 7_000);
    await bed.endpoints.client(bed.pair.a, bed.pair.addrB, port, 50_000, 1, 0, 7_000).done;
    const node = hostname();
    const forward = { aggregation: 'process', source_node: node, source_process: 'e2e-client', dest_node: node, dest_process: 'e2e-server' };
    await until('exact bytes', () => metricValue(p.http, 'tcp_bytes_total', forward), (v) => v === 50_000);
    assert.equal(await collector.stop(), 0);
  });

  test('garbage from one peer closes only that connection; the collector keeps being counted exactly', { timeout: 45_000 }, async () => {
    const p = await ports();
    const reducer = startReducer(p, join(bed.logs, 'garbage.db'), bed.logs, 'reducer-garbage');
    const collector = startCollector(p.intake, bed.logs, 'collector-garbage');
    bed.daemons.push(reducer, collector);
    await until('the collector to connect', () => metricValue(p.http, 'ebpf_net_reducer_collectors', {}), (n) => n === 1);
    const bad = connect(p.intake, '127.0.0.1');
    await new Promise((r) => bad.once('connect', r));
    bad.write(Buffer.from('\x00\x01garbage that is not the protocol\r\n'.repeat(10)));
    await new Promise((r) => bad.once('close', r));
    assert.equal(await metricValue(p.http, 'ebpf_net_reducer_decode_errors_total', { code: 'BAD_FRAME_SYNC' }).then(async (v) => v ?? (await new Promise((r) => setTimeout(r, 600)), metricValue(p.http, 'ebpf_net_reducer_decode_errors_total', { code: 'BAD_FRAME_SYNC' }))), 1);
    port++;
    await bed.endpoints.server(bed.pair.b, bed.pair.addrB, port, 40_000, 3_000);
    await bed.endpoints.client(bed.pair.a, bed.pair.addrB, port, 40_000, 1, 0, 3_000).done;
    const node = hostname();
    await until('exact bytes', () => metricValue(p.http, 'tcp_bytes_total', { aggregation: 'process', source_node: node, source_process: 'e2e-client', dest_node: node, dest_process: 'e2e-server' }), (v) => v === 40_000);
    assert.equal(await metricValue(p.http, 'ebpf_net_reducer_collectors', {}), 1);
  });
});
