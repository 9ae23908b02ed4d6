// Test support: an in-process reducer on ephemeral loopback ports, and polling helpers.

import pino from 'pino';
import { DEFAULT_LIMITS, Reducer, type ReducerOptions } from '../src/index.js';
import type { SeriesPoint } from '../src/outputs/report.js';

export const silentLog = pino({ level: 'silent' });

/** The reducer's default --match-window, which startReducer uses too. */
export const MATCH_WINDOW_MS = 2_000;

/** A tick time past the match window of every flow opened so far (single-ended flows wait that long). */
export const pastMatchWindow = (): number => Date.now() + MATCH_WINDOW_MS;

export async function startReducer(overrides: Partial<ReducerOptions> = {}, log = silentLog): Promise<Reducer> {
  const reducer = new Reducer(
    {
      intakeHost: '127.0.0.1',
      intakePort: 0,
      promHost: '127.0.0.1',
      promPort: 0,
      intervalMs: 3_600_000, // the tests end intervals themselves, with tick()
      levels: ['node', 'process'],
      maxSeries: 10_000,
      heartbeatTimeoutMs: 60_000,
      nodeGraceMs: 60_000,
      matchWindowMs: MATCH_WINDOW_MS,
      maxFrameBytes: 4 * 1024 * 1024,
      limits: DEFAULT_LIMITS,
      ...overrides,
    },
    log,
  );
  await reducer.start();
  return reducer;
}

export async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The value of the one point of `metric` whose labels include `labels`; undefined if none. */
export function valueOf(points: readonly SeriesPoint[], metric: string, labels: Record<string, string>): number | undefined {
  const found = points.filter((p) => p.metric.name === metric && Object.entries(labels).every(([k, v]) => p.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} points of ${metric} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}
