#!/usr/bin/env node
// reducer: takes many kernel-collectors, joins the two ends of each connection into one flow,
// and exports time series (Prometheus, an embedded SQLite store, OTLP).
//   reducer [options]          run the service
//   reducer query <what> ...   ask the SQLite store (see `reducer query --help`)

import { Command, Option } from 'commander';
import { UserError, createLogger, exitOnUserError } from '@ebpf-net/common';
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
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: flushing the last interval');
    await reducer.stop();
    log.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

const program = new Command('reducer')
  .version(VERSION)
  .description(
    'Takes many kernel-collectors, joins both ends of each connection into one flow, and exports time series:\n' +
      'Prometheus on --prom /metrics, an embedded SQLite store (--db, queried with `reducer query` or /api), and OTLP (--otlp-endpoint).\n' +
      'Every option can also be set by the environment variable in brackets.',
  )
  .enablePositionalOptions();
for (const o of OPTIONS) {
  // Defaults are applied by resolveConfig (after the environment), so they are only shown here.
  const text = [o.description, o.env && `[${o.env}]`, o.defaultValue && `(default: ${o.defaultValue})`].filter(Boolean).join(' ');
  program.addOption(new Option(o.flags, text));
}
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
