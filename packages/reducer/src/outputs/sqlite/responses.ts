// The JSON bodies of the API, which the CLI's --json prints too: one shape for both.

import type Database from 'better-sqlite3';
import {
  type FlowRow,
  type ListSeriesOptions,
  type SeriesRow,
  type TopFlowsOptions,
  DEFAULT_FLOW_METRIC,
  listSeries,
  metricUnit,
  topFlows,
} from './queries.js';

export interface FlowsResponse {
  metric: string;
  /** The metric's unit, or null when the store has never seen the metric. */
  unit: string | null;
  sinceMs: number;
  untilMs: number | null;
  aggregation: string | null;
  flows: FlowRow[];
}

export function flowsResponse(db: Database.Database, options: TopFlowsOptions): FlowsResponse {
  const metric = options.metric ?? DEFAULT_FLOW_METRIC;
  return {
    metric,
    unit: metricUnit(db, metric) ?? null,
    sinceMs: options.sinceMs,
    untilMs: options.untilMs ?? null,
    aggregation: options.aggregation ?? null,
    flows: topFlows(db, options),
  };
}

export interface SeriesResponse {
  series: SeriesRow[];
}

export function seriesResponse(db: Database.Database, options: ListSeriesOptions): SeriesResponse {
  return { series: listSeries(db, options) };
}
