// bench/reducer: messages/s ingested end to end (decode, state, matching, aggregation) by one
// reducer on one core, from N synthetic collectors over loopback in another process; short
// connections per second it takes, both ends of each reported by two collectors (open, address,
// counters, close: the work of connection churn); and the heap per active flow.
//   node --expose-gc bench/dist/reducer.js [--collectors N] [--sockets K] [--seconds S] [--flows F] [--batch B]

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { DEFAULT_LIMITS, Reducer } from '@ebpf-net/reducer';
import { SyntheticCollector } from '@ebpf-net/reducer/testing';
import { emit, parseBenchArgs } from './report.js';

const args = parseBenchArgs({ collectors: 16, sockets: 1000, seconds: 6, flows: 100_000, batch: 20_000 });
const log = pino({ level: 'silent' });

function newReducer(): Reducer {
  return new Reducer(
    {
      intakeHost: '127.0.0.1', intakePort: 0, promHost: '127.0.0.1', promPort: 0,
      intervalMs: 1000, levels: ['node', 'process'], maxSeries: 100_000,
      heartbeatTimeoutMs: 60_000, nodeGraceMs: 60_000, matchWindowMs: 2_000, maxFrameBytes: 4 << 20, limits: DEFAULT_LIMITS,
    },
    log,
  );
}

interface LoadRun {
  seconds: number;
  cpuSeconds: number;
  messages: number;
  /** The reducer's TCP flows once the load has ended. */
  flows: number;
}

/**
 * A reducer with `script` (a load generator) forked against it: the first second (connections,
 * opens, JIT warm-up) is skipped, then the reducer's messages and CPU are measured until one
 * second before the load ends.
 */
async function underLoad(script: string, scriptArgs: number[]): Promise<LoadRun> {
  const reducer = newReducer();
  await reducer.start();
  const load = fork(fileURLToPath(new URL(script, import.meta.url)), [reducer.intakePort, ...scriptArgs].map(String));
  await new Promise((r) => setTimeout(r, 1000));
  const m0 = reducer.intake.stats.messages;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, (args.seconds - 2) * 1000));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const messages = reducer.intake.stats.messages - m0;
  await new Promise((r) => load.once('exit', r));
  const flows = reducer.flows.tcp.size;
  await reducer.stop();
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, messages, flows };
}

async function throughput(): Promise<void> {
  const { seconds, cpuSeconds, messages, flows } = await underLoad('./reducer-load.js', [args.collectors, args.sockets, args.seconds]);
  emit({
    bench: 'reducer', case: 'ingest_end_to_end', collectors: args.collectors, sockets_per_collector: args.sockets, flows,
    messages_per_s: messages / seconds, reducer_cpu_cores: cpuSeconds / seconds, ns_cpu_per_message: (cpuSeconds * 1e9) / messages,
    target: '>= 2M messages/s on one core',
  });
}

/** Short connections: both ends opened, counted and closed, as fast as the reducer takes them. */
async function connectionChurn(): Promise<void> {
  const { seconds, cpuSeconds, messages, flows } = await underLoad('./reducer-churn-load.js', [args.batch, args.seconds]);
  const connections = messages / 8; // 4 messages from each end
  emit({
    bench: 'reducer', case: 'connection_churn', connections_per_batch: args.batch,
    connections_per_s: connections / seconds, reducer_cpu_cores: cpuSeconds / seconds, us_cpu_per_connection: (cpuSeconds * 1e6) / connections,
    flows_left_at_end: flows,
    note: 'each connection: both ends (two collectors) report open, address, counters and close; the reducer runs in this process, the load in another',
  });
}

async function memoryPerFlow(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc for the memory figure');
  const reducer = newReducer();
  await reducer.start();
  gc();
  const before = process.memoryUsage().heapUsed;
  // Both ends of every flow reported, by two collectors, as in a cluster.
  const client = new SyntheticCollector({ port: reducer.intakePort, nodeId: 'client-node' });
  const server = new SyntheticCollector({ port: reducer.intakePort, nodeId: 'server-node' });
  await client.connect();
  await server.connect();
  for (let i = 0; i < args.flows; i++) {
    const caddr = `10.1.${(i >> 16) & 255}.${(i >> 8) & 255}`;
    const cport = 1024 + (i & 255) * 200 + ((i >> 24) & 255);
    client.openTcp({ socketId: i + 1, pid: 100 + (i % 100), local: caddr, localPort: cport, remote: '10.2.0.1', remotePort: 443, role: 'client' });
    server.openTcp({ socketId: i + 1, pid: 200 + (i % 10), local: '10.2.0.1', localPort: 443, remote: caddr, remotePort: cport, role: 'server' });
    client.stats(i + 1, 100, 200, 150);
    server.stats(i + 1, 200, 100, 150);
    if (i % 5000 === 4999) await Promise.all([client.flush(), server.flush()]);
  }
  await Promise.all([client.flush(), server.flush()]);
  const expected = 2 + 8 * args.flows;
  while (reducer.intake.stats.messages < expected) await new Promise((r) => setTimeout(r, 20));
  reducer.tick();
  gc();
  const after = process.memoryUsage().heapUsed;
  const flows = reducer.flows.tcp.size;
  if (flows !== args.flows) throw new Error(`expected ${args.flows} flows, got ${flows}`);
  emit({ bench: 'reducer', case: 'heap_per_active_flow', flows, sockets: 2 * flows, bytes_per_flow: (after - before) / flows, target: '<= 1024 (both ends, their processes, the flow and its series)' });
  await client.close();
  await server.close();
  await reducer.stop();
}

await throughput();
await connectionChurn();
await memoryPerFlow();
