// The JSON HTTP API over the store, mounted on the reducer's HTTP server:
//   GET /api/flows?since=10m[&until=..][&metric=tcp_bytes][&aggregation=process][&limit=20]
//   GET /api/series[?metric=..][&since=..][&limit=1000]
//   GET /api/series/{id}/samples?since=..[&until=..]
// since/until: a duration back from now (90s, 10m, 2h, 1d), an ISO timestamp or ms since the epoch.
// A bad parameter is a 400 with { error } saying which and why.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type Database from 'better-sqlite3';
import { ParamError } from './errors.js';
import { parseLabelValue, parseLimit, parseMetric, parseSeriesId, parseTime } from './params.js';
import { seriesSamples } from './queries.js';
import { flowsResponse, seriesResponse } from './responses.js';

export type ApiHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface ApiOptions {
  /** The clock durations count back from; tests fix it. */
  now?: () => number;
}

const SAMPLES_PATH = /^\/api\/series\/([^/]+)\/samples$/;

/** Returns a handler that answers the API's paths and returns false for any other path. */
export function createApiHandler(store: { readonly db: Database.Database }, options: ApiOptions = {}): ApiHandler {
  const now = options.now ?? Date.now;
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = routeOf(url.pathname);
    if (route === undefined) return false;
    if (req.method !== 'GET') {
      send(res, 405, { error: `${req.method ?? ''} is not allowed here; use GET` }, { allow: 'GET' });
      return true;
    }
    try {
      send(res, 200, route(store.db, new Params(url.searchParams), now()));
    } catch (e) {
      if (e instanceof ParamError) send(res, 400, { error: e.message });
      else send(res, 500, { error: `query failed: ${e instanceof Error ? e.message : String(e)}` });
    }
    return true;
  };
}

type Route = (db: Database.Database, params: Params, nowMs: number) => unknown;

function routeOf(pathname: string): Route | undefined {
  if (pathname === '/api/flows') return flows;
  if (pathname === '/api/series') return series;
  const samples = SAMPLES_PATH.exec(pathname);
  if (samples) return (db, params, nowMs) => samplesOf(db, samples[1] as string, params, nowMs);
  return undefined;
}

function flows(db: Database.Database, params: Params, nowMs: number): unknown {
  params.only('since', 'until', 'metric', 'aggregation', 'limit');
  const since = params.required('since', 'a duration back from now (10m), an ISO timestamp or ms since the epoch');
  const until = params.get('until');
  const metric = params.get('metric');
  const aggregation = params.get('aggregation');
  const limit = params.get('limit');
  return flowsResponse(db, {
    sinceMs: parseTime('since', since, nowMs),
    ...(until === undefined ? {} : { untilMs: parseTime('until', until, nowMs) }),
    ...(metric === undefined ? {} : { metric: parseMetric(metric) }),
    ...(aggregation === undefined ? {} : { aggregation: parseLabelValue('aggregation', aggregation) }),
    ...(limit === undefined ? {} : { limit: parseLimit(limit) }),
  });
}

function series(db: Database.Database, params: Params, nowMs: number): unknown {
  params.only('metric', 'since', 'limit');
  const metric = params.get('metric');
  const since = params.get('since');
  const limit = params.get('limit');
  return seriesResponse(db, {
    ...(metric === undefined ? {} : { metric: parseMetric(metric) }),
    ...(since === undefined ? {} : { sinceMs: parseTime('since', since, nowMs) }),
    ...(limit === undefined ? {} : { limit: parseLimit(limit) }),
  });
}

function samplesOf(db: Database.Database, idText: string, params: Params, nowMs: number): unknown {
  params.only('since', 'until');
  const id = parseSeriesId(idText);
  const since = params.required('since', 'a duration back from now (1h), an ISO timestamp or ms since the epoch');
  const until = params.get('until');
  return {
    series: id,
    samples: seriesSamples(db, id, {
      sinceMs: parseTime('since', since, nowMs),
      ...(until === undefined ? {} : { untilMs: parseTime('until', until, nowMs) }),
    }),
  };
}

/** The query string, strict: unknown or repeated parameters are errors, not silently ignored. */
class Params {
  constructor(private readonly search: URLSearchParams) {}

  only(...known: string[]): void {
    for (const name of new Set(this.search.keys())) {
      if (!known.includes(name)) throw new ParamError(name, `unknown parameter; this path takes ${known.join(', ')}`);
      if (this.search.getAll(name).length > 1) throw new ParamError(name, 'given more than once');
    }
  }

  get(name: string): string | undefined {
    return this.search.get(name) ?? undefined;
  }

  required(name: string, what: string): string {
    const value = this.get(name);
    if (value === undefined) throw new ParamError(name, `required: ${what}`);
    return value;
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text);
}
