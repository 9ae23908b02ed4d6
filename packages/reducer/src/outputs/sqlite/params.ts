// Parsing of the text parameters the API and the CLI accept, into what queries.ts takes. Each
// failure is a ParamError that says what was expected.

import { ParamError } from './errors.js';
import { MAX_LIMIT } from './queries.js';

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)([smhd])$/;
const EPOCH_MS = /^\d+$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}/;
const METRIC = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const MAX_LABEL_VALUE = 1024;

/**
 * A point in time: a duration back from now (`90s`, `10m`, `2h`, `1d`), an ISO 8601
 * timestamp, or ms since the epoch.
 */
export function parseTime(param: string, text: string, nowMs: number): number {
  const value = text.trim();
  const duration = DURATION.exec(value);
  if (duration) return nowMs - Number(duration[1]) * (UNIT_MS[duration[2] as string] as number);
  if (EPOCH_MS.test(value)) return Number(value);
  if (ISO_DATE.test(value)) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new ParamError(param, `expected a duration back from now (90s, 10m, 2h, 1d), an ISO timestamp or ms since the epoch, got ${JSON.stringify(text)}`);
}

export function parseLimit(text: string): number {
  const limit = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT)) throw new ParamError('limit', `expected an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(text)}`);
  return limit;
}

/** A base metric name, as the aggregator names them (tcp_bytes, not tcp_bytes_total). */
export function parseMetric(text: string): string {
  if (!METRIC.test(text)) throw new ParamError('metric', `expected a metric name such as tcp_bytes, got ${JSON.stringify(text)}`);
  return text;
}

/** A label value to match exactly, such as an aggregation level. */
export function parseLabelValue(param: string, text: string): string {
  if (text.length === 0 || text.length > MAX_LABEL_VALUE) throw new ParamError(param, `expected a non-empty value of at most ${MAX_LABEL_VALUE} characters`);
  return text;
}

export function parseSeriesId(text: string): number {
  const id = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(id)) throw new ParamError('series', `expected a series id (an integer), got ${JSON.stringify(text)}`);
  return id;
}
