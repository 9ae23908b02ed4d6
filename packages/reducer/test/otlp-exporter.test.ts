// The OTLP exporter against a real gRPC MetricsService on 127.0.0.1, built from the same official
// .proto files and decoding requests with protobufjs: what arrives, in what order, and what is
// retried, dropped and counted when the collector is down or refuses.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { RTT_BOUNDS_SECONDS, flowMetrics } from '../src/aggregation/metrics.js';
import { OtlpConfigError, OtlpExporter, type OtlpExporterOptions, type OtlpLogger, loadOtlpProtos } from '../src/outputs/otlp/index.js';
import { type Decoded, type Reply, closeAllReceivers, reservePort, startReceiver } from './otlp-receiver.js';
import { waitFor } from './support.js';
import type { IntervalReport } from '../src/outputs/report.js';

const protos = loadOtlpProtos();
const START_MS = 1763812345678;

after(closeAllReceivers);

function captureLogger(): { logger: OtlpLogger; lines: Array<{ level: string; msg: string }> } {
  const lines: Array<{ level: string; msg: string }> = [];
  const at = (level: string) => (_obj: object, msg?: string) => void lines.push({ level, msg: msg ?? '' });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

/** Short delays so every retry path runs in well under a second. */
function exporterFor(port: number, options: Partial<OtlpExporterOptions> = {}): OtlpExporter {
  return new OtlpExporter({
    endpoint: `127.0.0.1:${port}`,
    timeoutMs: 2000,
    backoff: { initialMs: 20, maxMs: 100 },
    closeTimeoutMs: 1000,
    resource: { 'host.name': 'test-host' },
    ...options,
  });
}

/** A report whose one counter carries `id`, to tell reports apart at the collector. */
function numbered(id: number): IntervalReport {
  return {
    startMs: START_MS,
    intervalStartMs: START_MS + (id - 1) * 10_000,
    endMs: START_MS + id * 10_000,
    points: [{ metric: flowMetrics.tcpBytes, labels: { source: 'a', dest: 'b' }, value: id, delta: 1 }],
  };
}

const idOf = (request: Decoded): number => Number(request.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!.sum!.dataPoints[0]!.asInt);

describe('OtlpExporter', () => {
  it('(a) delivers counters, gauges and histograms with the exact data points', async () => {
    const collector = await startReceiver();
    const exporter = exporterFor(collector.port, { headers: { 'X-Api-Key': 'k1' }, logger: pino({ level: 'silent' }) });
    const bucketCounts = [0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    exporter.write({
      startMs: START_MS,
      intervalStartMs: START_MS + 50_000,
      endMs: START_MS + 60_001,
      points: [
        { metric: flowMetrics.tcpBytes, labels: { source: 'web', dest: 'db:5432' }, value: 123_456_789_012, delta: 1000 },
        { metric: flowMetrics.tcpActive, labels: { source: 'web', dest: 'db:5432' }, value: 3, delta: 3 },
        { metric: flowMetrics.tcpBytes, labels: { source: 'db:5432', dest: 'web' }, value: 42, delta: 2 },
        {
          metric: flowMetrics.tcpRtt,
          labels: { source: 'web', dest: 'db:5432' },
          value: 4,
          delta: 1,
          histogram: { bounds: RTT_BOUNDS_SECONDS, bucketCounts, sum: 1.25, count: 4 },
          histogramDelta: { bounds: RTT_BOUNDS_SECONDS, bucketCounts: bucketCounts.map(() => 0), sum: 0, count: 0 },
        },
      ],
    });
    // close() delivers what is queued before closing the channel.
    await exporter.close();
    assert.equal(collector.received.length, 1);

    const start = '1763812345678000000';
    const end = '1763812405679000000';
    const webToDb = [{ key: 'source', value: { stringValue: 'web' } }, { key: 'dest', value: { stringValue: 'db:5432' } }];
    assert.deepEqual(collector.received[0], {
      resourceMetrics: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'ebpf-net-reducer' } }, { key: 'host.name', value: { stringValue: 'test-host' } }] },
        scopeMetrics: [{
          scope: { name: 'ebpf-net-reducer' },
          metrics: [
            {
              name: 'tcp.bytes',
              description: flowMetrics.tcpBytes.help,
              unit: 'By',
              sum: {
                dataPoints: [
                  { attributes: webToDb, startTimeUnixNano: start, timeUnixNano: end, asInt: '123456789012' },
                  { attributes: [{ key: 'source', value: { stringValue: 'db:5432' } }, { key: 'dest', value: { stringValue: 'web' } }], startTimeUnixNano: start, timeUnixNano: end, asInt: '42' },
                ],
                aggregationTemporality: 'AGGREGATION_TEMPORALITY_CUMULATIVE',
                isMonotonic: true,
              },
            },
            {
              name: 'tcp.active',
              description: flowMetrics.tcpActive.help,
              unit: '{connection}',
              gauge: { dataPoints: [{ attributes: webToDb, timeUnixNano: end, asDouble: 3 }] },
            },
            {
              name: 'tcp.rtt',
              description: flowMetrics.tcpRtt.help,
              unit: 's',
              histogram: {
                dataPoints: [{
                  attributes: webToDb,
                  startTimeUnixNano: start,
                  timeUnixNano: end,
                  count: '4',
                  sum: 1.25,
                  bucketCounts: bucketCounts.map(String),
                  explicitBounds: RTT_BOUNDS_SECONDS,
                }],
                aggregationTemporality: 'AGGREGATION_TEMPORALITY_CUMULATIVE',
              },
            },
          ],
        }],
      }],
    });
    assert.deepEqual(collector.metadata[0]!.get('x-api-key'), ['k1']);
    assert.deepEqual(exporter.stats, { exported: 1, failed: 0, droppedReports: 0, retries: 0, rejectedDataPoints: 0, queued: 0 });
    collector.close();
  });

  it('(b) queues while the collector is down and delivers in order once it is up', async () => {
    const port = await reservePort();
    const exporter = exporterFor(port);
    for (const id of [1, 2, 3]) exporter.write(numbered(id));
    await waitFor('retries while down', () => exporter.stats.retries >= 3, 5000);
    assert.equal(exporter.stats.exported, 0);
    assert.equal(exporter.stats.queued, 3);

    const collector = await startReceiver(() => 'ok', port);
    await collector.waitFor(3);
    assert.deepEqual(collector.received.map(idOf), [1, 2, 3]);
    await exporter.close();
    assert.equal(collector.calls(), 3);
    assert.deepEqual({ ...exporter.stats, retries: 0 }, { exported: 3, failed: 0, droppedReports: 0, retries: 0, rejectedDataPoints: 0, queued: 0 });
    collector.close();
  });

  it('(c) drops the oldest report when the queue overflows, counts it and warns once', async () => {
    const port = await reservePort();
    const { logger, lines } = captureLogger();
    const exporter = exporterFor(port, { maxQueue: 3, logger });
    // Report 1 goes out at once and fails; 2..6 queue behind it.
    for (const id of [1, 2, 3, 4, 5, 6]) exporter.write(numbered(id));
    await waitFor('the first failure', () => exporter.stats.retries >= 1, 5000);
    assert.equal(exporter.stats.droppedReports, 3);
    assert.equal(exporter.stats.queued, 3);

    const collector = await startReceiver(() => 'ok', port);
    await collector.waitFor(3);
    await exporter.close();
    assert.deepEqual(collector.received.map(idOf), [4, 5, 6]);
    assert.equal(exporter.stats.exported, 3);
    assert.equal(exporter.stats.droppedReports, 3);
    assert.equal(lines.filter((l) => l.level === 'warn' && l.msg.startsWith('OTLP queue full')).length, 1);
    collector.close();
  });

  it('(d) retries retryable statuses and delivers once', async () => {
    const refusals: Reply[] = [
      { code: status.UNAVAILABLE, details: 'starting' },
      { code: status.RESOURCE_EXHAUSTED, details: 'busy' },
      { code: status.ABORTED, details: 'conflict' },
    ];
    const collector = await startReceiver((call) => refusals[call - 1] ?? 'ok');
    const exporter = exporterFor(collector.port);
    exporter.write(numbered(1));
    await collector.waitFor(1);
    await exporter.close();
    assert.equal(collector.calls(), 4);
    assert.deepEqual(collector.received.map(idOf), [1]);
    assert.deepEqual(exporter.stats, { exported: 1, failed: 0, droppedReports: 0, retries: 3, rejectedDataPoints: 0, queued: 0 });
    collector.close();
  });

  it('(d) drops a report refused with INVALID_ARGUMENT without retrying it', async () => {
    const collector = await startReceiver((call) => (call === 1 ? { code: status.INVALID_ARGUMENT, details: 'bad data' } : 'ok'));
    const { logger, lines } = captureLogger();
    const exporter = exporterFor(collector.port, { logger });
    exporter.write(numbered(1));
    exporter.write(numbered(2));
    await collector.waitFor(1);
    await exporter.close();
    assert.equal(collector.calls(), 2);
    assert.deepEqual(collector.received.map(idOf), [2]);
    assert.deepEqual(exporter.stats, { exported: 1, failed: 1, droppedReports: 0, retries: 0, rejectedDataPoints: 0, queued: 0 });
    assert.equal(lines.filter((l) => l.level === 'error').length, 1);
    collector.close();
  });

  it('counts partial success as exported, with the rejected points', async () => {
    const server = new Server();
    server.addService(
      {
        Export: {
          path: protos.exportPath,
          requestStream: false,
          responseStream: false,
          requestSerialize: (bytes: Buffer) => bytes,
          requestDeserialize: (bytes: Buffer) => bytes,
          responseSerialize: (response: object) => Buffer.from(protos.response.encode(protos.response.fromObject(response)).finish()),
          responseDeserialize: (bytes: Buffer) => bytes,
        },
      },
      {
        Export: (_call: ServerUnaryCall<Buffer, object>, callback: sendUnaryData<object>) =>
          callback(null, { partialSuccess: { rejectedDataPoints: 2, errorMessage: 'too old' } }),
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const exporter = exporterFor(port);
    exporter.write(numbered(1));
    await exporter.close();
    assert.equal(exporter.stats.exported, 1);
    assert.equal(exporter.stats.rejectedDataPoints, 2);
    server.forceShutdown();
  });

  it('refuses bad options with a config error, before opening a channel', () => {
    assert.throws(() => new OtlpExporter({ endpoint: 'collector' }), OtlpConfigError);
    assert.throws(() => new OtlpExporter({ endpoint: '127.0.0.1:4317', maxQueue: 0 }), OtlpConfigError);
    assert.throws(() => new OtlpExporter({ endpoint: '127.0.0.1:4317', timeoutMs: -1 }), OtlpConfigError);
  });

  it('close() gives up after closeTimeoutMs and counts what it leaves', async () => {
    const port = await reservePort();
    const exporter = exporterFor(port, { closeTimeoutMs: 200 });
    exporter.write(numbered(1));
    exporter.write(numbered(2));
    const started = Date.now();
    await exporter.close();
    assert.ok(Date.now() - started < 1500, `close took ${Date.now() - started} ms`);
    assert.equal(exporter.stats.droppedReports, 2);
    assert.equal(exporter.stats.queued, 0);
    exporter.write(numbered(3));
    assert.equal(exporter.stats.droppedReports, 3);
  });
});
