// `reducer query`: reads the SQLite file a reducer writes, read-only, so it is safe while the
// reducer runs (WAL readers do not block the writer). The reducer binary passes the arguments
// after `query` to runQuery.

import { Command, CommanderError, InvalidArgumentError } from 'commander';
import type Database from 'better-sqlite3';
import { ParamError, StoreOpenError } from './errors.js';
import { formatLabels, formatTable, formatTotal } from './format.js';
import { openReadOnly } from './open.js';
import { parseLabelValue, parseLimit, parseMetric, parseTime } from './params.js';
import { DEFAULT_FLOW_LIMIT, DEFAULT_FLOW_METRIC, DEFAULT_SERIES_LIMIT } from './queries.js';
import { flowsResponse, seriesResponse } from './responses.js';

const TIME_FORMS = 'a duration back from now (90s, 10m, 2h, 1d), an ISO timestamp, or ms since the epoch';

interface TopFlowsCliOptions {
  db: string;
  since: number;
  until?: number;
  metric: string;
  aggregation?: string;
  limit: number;
  json: boolean;
}

interface SeriesCliOptions {
  db: string;
  since?: number;
  metric?: string;
  limit: number;
  json: boolean;
}

/**
 * Runs `reducer query <argv...>` (argv: the arguments after `query`) and returns the exit code:
 * 0 on success, 1 for a usage error or a file that cannot be queried (one line on `err`).
 */
export async function runQuery(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const program = buildProgram(out, err);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof StoreOpenError || e instanceof ParamError) {
      err.write(`reducer query: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

function buildProgram(out: NodeJS.WritableStream, err: NodeJS.WritableStream): Command {
  const program = new Command('reducer query')
    .description('Query the SQLite file a reducer writes. Read-only: safe while the reducer runs.')
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s) })
    .showHelpAfterError('(add --help for usage)');

  program
    .command('top-flows')
    .description('The flows (source → dest) with the largest totals of a metric over a time window, largest first.')
    .requiredOption('--db <file>', 'SQLite file the reducer writes')
    .requiredOption('--since <time>', `start of the window: ${TIME_FORMS}`, cli((text) => parseTime('since', text, Date.now())))
    .option('--until <time>', 'end of the window, in the same forms as --since (default: now)', cli((text) => parseTime('until', text, Date.now())))
    .option('--metric <name>', 'metric to total, by its base name (tcp_bytes, not tcp_bytes_total)', cli(parseMetric), DEFAULT_FLOW_METRIC)
    .option('--aggregation <level>', 'only flows at this aggregation level: node, process, container, workload (default: every level)', cli((text) => parseLabelValue('aggregation', text)))
    .option('--limit <n>', 'how many flows to print', cli(parseLimit), DEFAULT_FLOW_LIMIT)
    .option('--json', 'print JSON (the body of GET /api/flows) instead of a table', false)
    .action((options: TopFlowsCliOptions) => withDb(options.db, (db) => printTopFlows(db, options, out)));

  program
    .command('series')
    .description('The stored series: id, metric, kind, unit, last sample and labels.')
    .requiredOption('--db <file>', 'SQLite file the reducer writes')
    .option('--metric <name>', 'only series of this metric, by its base name (default: every metric)', cli(parseMetric))
    .option('--since <time>', `only series with a sample since then: ${TIME_FORMS} (default: any time)`, cli((text) => parseTime('since', text, Date.now())))
    .option('--limit <n>', 'how many series to print', cli(parseLimit), DEFAULT_SERIES_LIMIT)
    .option('--json', 'print JSON (the body of GET /api/series) instead of a table', false)
    .action((options: SeriesCliOptions) => withDb(options.db, (db) => printSeries(db, options, out)));

  return program;
}

/** Turns a ParamError into commander's error for an invalid option value. */
function cli<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (e) {
      if (e instanceof ParamError) throw new InvalidArgumentError(e.message);
      throw e;
    }
  };
}

function withDb(path: string, use: (db: Database.Database) => void): void {
  const db = openReadOnly(path);
  try {
    use(db);
  } finally {
    db.close();
  }
}

function printTopFlows(db: Database.Database, options: TopFlowsCliOptions, out: NodeJS.WritableStream): void {
  const response = flowsResponse(db, {
    sinceMs: options.since,
    metric: options.metric,
    limit: options.limit,
    ...(options.until === undefined ? {} : { untilMs: options.until }),
    ...(options.aggregation === undefined ? {} : { aggregation: options.aggregation }),
  });
  if (options.json) {
    out.write(`${JSON.stringify(response, null, 2)}\n`);
  } else if (response.flows.length === 0) {
    out.write(`no flows with ${response.metric} samples since ${new Date(response.sinceMs).toISOString()}\n`);
  } else {
    const rows = response.flows.map((flow) => [formatLabels(flow.source), '→', formatLabels(flow.dest), formatTotal(flow.total, response.unit)]);
    out.write(formatTable(['SOURCE', '', 'DEST', 'TOTAL'], rows, [false, false, false, true]));
  }
}

function printSeries(db: Database.Database, options: SeriesCliOptions, out: NodeJS.WritableStream): void {
  const response = seriesResponse(db, {
    limit: options.limit,
    ...(options.metric === undefined ? {} : { metric: options.metric }),
    ...(options.since === undefined ? {} : { sinceMs: options.since }),
  });
  if (options.json) {
    out.write(`${JSON.stringify(response, null, 2)}\n`);
  } else if (response.series.length === 0) {
    out.write('no series\n');
  } else {
    const rows = response.series.map((s) => [String(s.id), s.metric, s.kind, s.unit, s.lastMs === null ? '-' : new Date(s.lastMs).toISOString(), formatLabels(s.labels)]);
    out.write(formatTable(['ID', 'METRIC', 'KIND', 'UNIT', 'LAST SAMPLE', 'LABELS'], rows, [true]));
  }
}
