#!/usr/bin/env node
// reducer: takes many kernel-collectors, joins the two ends of each connection into one flow,
// and exports time series (Prometheus, an embedded SQLite store, OTLP).
//   reducer [options]          run the service
//   reducer query <what> ...   ask the SQLite store (see `reducer query --help`)

import { Command } from 'commander';
import { UserError, addOptions, createLogger, exitOnUserError, stopOnSignals } from '@ebpf-net/common';
import { OPTIONS, type ReducerFlags, resolveConfig } from './config.js';
import { OtlpExporter } from './outputs/otlp/index.js';
import type { RouteHandler } from './outputs/http-server.js';
import type { ReportSink } from './outputs/report.js';
import { SqliteStore, StoreOpenError, createApiHandler, runQuery } from './outputs/sqlite/index.js';
import { DEFAULT_LIMITS, Reducer } from './reducer.js';

const VERSION = '0.1.0';

async function serve(flags: ReducerFlags): Promise<void> {
  const config = resolveConfig(flags);
  const log = createLogger({ name: 'reducer', level: config.logLevel, console: config.logConsole, file: config.logFile });
  const sinks: ReportSink[] = [];
  const routes: RouteHandler[] = [];
  if (config.dbPath) {
    let store: SqliteStore;
    try {
      store = new SqliteStore(config.dbPath, { retentionMs: config.retentionMs });
    } catch (error) {
      if (error instanceof StoreOpenError) throw new UserError(error.message);
      throw error;
    }
    sinks.push(store);
    routes.push(createApiHandler(store));
    log.info({ db: config.dbPath, retentionMs: config.retentionMs }, 'SQLite store open');
  }
  if (config.otlpEndpoint) {
    sinks.push(new OtlpExporter({ endpoint: config.otlpEndpoint, logger: log }));
    log.info({ endpoint: config.otlpEndpoint }, 'exporting OTLP metrics');
  }
  const reducer = new Reducer(
    {
      intakeHost: config.intakeHost,
      intakePort: config.intakePort,
      promHost: config.promHost,
      promPort: config.promPort,
      intervalMs: config.intervalMs,
      levels: config.levels,
      maxSeries: config.maxSeries,
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      nodeGraceMs: config.nodeGraceMs,
      matchWindowMs: config.matchWindowMs,
      maxFrameBytes: 4 * 1024 * 1024,
      limits: DEFAULT_LIMITS,
    },
    log,
    sinks,
    routes,
  );
  try {
    await reducer.start();
  } catch (error) {
    for (const sink of sinks) await sink.close();
    throw error;
  }
  log.info({ version: VERSION, intake: reducer.intakePort, http: reducer.httpPort, intervalMs: config.intervalMs, levels: config.levels }, 'reducer running');
  stopOnSignals(log, 'flushing the last interval', () => reducer.stop());
}

const program = new Command('reducer')
  .version(VERSION)
  .description(
    'Takes many kernel-collectors, joins both ends of each connection into one flow, and exports time series:\n' +
      'Prometheus on --prom /metrics, an embedded SQLite store (--db, queried with `reducer query` or /api), and OTLP (--otlp-endpoint).\n' +
      'Every option can also be set by the environment variable in brackets.',
  )
  .enablePositionalOptions();
addOptions(program, OPTIONS);
program.action((flags: ReducerFlags) => serve(flags).catch((e) => exitOnUserError('reducer', e)));

program
  .command('query')
  .description('query the SQLite store: top-flows, series (see `reducer query --help`)')
  .helpOption(false)
  .allowUnknownOption()
  .allowExcessArguments()
  .argument('[args...]')
  .action(async (args: string[]) => {
    process.exitCode = await runQuery(args, process.stdout);
  });

await program.parseAsync();
