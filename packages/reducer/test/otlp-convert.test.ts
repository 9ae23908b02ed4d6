// IntervalReport → OTLP request conversion, and the exporter's small pure parts, without a network.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flowMetrics, selfMetrics } from '../src/aggregation/metrics.js';
import {
  AGGREGATION_TEMPORALITY_CUMULATIVE,
  OtlpConfigError,
  OtlpConvertError,
  SCOPE_NAME,
  backoffDelay,
  loadOtlpProtos,
  parseEndpoint,
  toExportRequest,
  unixNanos,
} from '../src/outputs/otlp/index.js';
import { LogThrottle } from '../src/outputs/otlp/throttle.js';
import type { IntervalReport } from '../src/outputs/report.js';

const START_MS = 1763812345678;

describe('unixNanos', () => {
  it('is exact where ms × 1e6 in floating point is not', () => {
    assert.equal(unixNanos(START_MS), '1763812345678000000');
    // The naive product is off by a few hundred nanoseconds at today's epoch.
    assert.notEqual(BigInt(START_MS * 1e6), 1763812345678000000n);
  });

  it('keeps sub-millisecond parts and zero', () => {
    assert.equal(unixNanos(1.5), '1500000');
    assert.equal(unixNanos(0), '0');
  });

  it('refuses times OTLP cannot carry', () => {
    assert.throws(() => unixNanos(-1), OtlpConvertError);
    assert.throws(() => unixNanos(Number.NaN), OtlpConvertError);
  });
});

describe('toExportRequest', () => {
  const report: IntervalReport = {
    startMs: START_MS,
    intervalStartMs: START_MS + 50_000,
    endMs: START_MS + 60_000,
    points: [
      { metric: flowMetrics.tcpBytes, labels: { source: 'a', dest: 'b' }, value: 10, delta: 1 },
      { metric: flowMetrics.tcpRttAverage, labels: { source: 'a', dest: 'b' }, value: 0.0025, delta: 0.0025 },
      { metric: flowMetrics.tcpBytes, labels: { source: 'b', dest: 'a' }, value: 20, delta: 2 },
      { metric: selfMetrics.messages, labels: {}, value: 1.5, delta: 0.5 },
    ],
  };
  const request = toExportRequest(report, { 'service.name': 'svc' });
  const scope = request.resourceMetrics[0]!.scopeMetrics[0]!;

  it('groups points under one metric per name, in order of first appearance', () => {
    assert.equal(scope.scope.name, SCOPE_NAME);
    assert.deepEqual(scope.metrics.map((m) => m.name), ['tcp.bytes', 'tcp.rtt.average', 'ebpf_net.reducer.messages']);
    assert.equal(scope.metrics[0]!.sum!.dataPoints.length, 2);
    assert.deepEqual(request.resourceMetrics[0]!.resource.attributes, [{ key: 'service.name', value: { stringValue: 'svc' } }]);
  });

  it('sends integer counters as int64 and falls back to double for the whole metric', () => {
    const [bytes, rtt, messages] = scope.metrics;
    assert.deepEqual(bytes!.sum!.dataPoints.map((p) => p.asInt), [10, 20]);
    assert.equal(bytes!.sum!.aggregationTemporality, AGGREGATION_TEMPORALITY_CUMULATIVE);
    assert.equal(bytes!.sum!.isMonotonic, true);
    assert.equal(messages!.sum!.dataPoints[0]!.asDouble, 1.5);
    assert.equal(messages!.sum!.dataPoints[0]!.asInt, undefined);
    // A gauge is of the moment: no start time.
    assert.deepEqual(rtt!.gauge!.dataPoints, [
      { attributes: [{ key: 'source', value: { stringValue: 'a' } }, { key: 'dest', value: { stringValue: 'b' } }], timeUnixNano: unixNanos(START_MS + 60_000), asDouble: 0.0025 },
    ]);
  });

  it('is accepted by the official schema', () => {
    const { request: type } = loadOtlpProtos();
    const message = type.fromObject(request);
    assert.equal(type.verify(message), null);
  });
});

describe('parseEndpoint', () => {
  it('accepts host:port, [v6]:port and a plaintext URL', () => {
    assert.equal(parseEndpoint('localhost:4317'), 'localhost:4317');
    assert.equal(parseEndpoint('[::1]:4317'), '[::1]:4317');
    assert.equal(parseEndpoint('http://127.0.0.1:4317/'), '127.0.0.1:4317');
  });

  it('refuses what it cannot dial', () => {
    for (const bad of ['localhost', 'https://collector:4317', 'host:0', 'host:70000', 'a b:1']) {
      assert.throws(() => parseEndpoint(bad), OtlpConfigError, bad);
    }
  });
});

describe('backoffDelay', () => {
  const options = { initialMs: 100, maxMs: 1000 };

  it('doubles, with ±20% jitter, up to the cap', () => {
    assert.equal(backoffDelay(0, options, () => 0.5), 100);
    assert.equal(backoffDelay(0, options, () => 0), 80);
    assert.equal(backoffDelay(2, options, () => 1), 480);
    assert.equal(backoffDelay(3, options, () => 1), 960);
    assert.equal(backoffDelay(4, options, () => 1), 1000);
    assert.equal(backoffDelay(500, options, () => 0), 800);
  });
});

describe('LogThrottle', () => {
  it('lets one through per interval and counts the others', () => {
    let now = 0;
    const throttle = new LogThrottle(1000, () => now);
    assert.equal(throttle.take(), 0);
    assert.equal(throttle.take(), undefined);
    now = 999;
    assert.equal(throttle.take(), undefined);
    now = 1000;
    assert.equal(throttle.take(), 2);
  });
});
