// The reducer's configuration: each knob from its flag, else its EBPF_NET_* variable, else its
// default. The table below is the one list of knobs; --help and the README are made from it.

import { join } from 'node:path';
import { type LogLevel, LOG_LEVELS, type OptionSpec, UserError, parseDuration, parseHostPort, parsePort, parsePositiveInt, pick } from '@ebpf-net/common';
import { type Level, parseLevels } from './aggregation/levels.js';

export interface ReducerConfig {
  intakeHost: string;
  intakePort: number;
  promHost: string;
  promPort: number;
  intervalMs: number;
  /** The SQLite file; undefined when the store is off (--no-db). */
  dbPath: string | undefined;
  retentionMs: number;
  otlpEndpoint: string | undefined;
  levels: Level[];
  maxSeries: number;
  heartbeatTimeoutMs: number;
  nodeGraceMs: number;
  matchWindowMs: number;
  logConsole: boolean;
  logFile: string | undefined;
  logLevel: LogLevel;
}

/** Raw option values from commander (strings, or booleans for switches). */
export interface ReducerFlags {
  host?: string;
  port?: string;
  prom?: string;
  interval?: string;
  db?: string | false;
  retention?: string;
  otlpEndpoint?: string;
  aggregation?: string;
  maxSeries?: string;
  heartbeatTimeout?: string;
  nodeGrace?: string;
  matchWindow?: string;
  logConsole?: boolean;
  logFile?: boolean;
  logLevel?: string;
}

export const DEFAULTS = {
  host: '0.0.0.0',
  port: '8000',
  prom: '0.0.0.0:7010',
  interval: '10s',
  dataDir: '/var/lib/ebpf-net',
  retention: '7d',
  aggregation: 'node,process,container',
  maxSeries: '100000',
  heartbeatTimeout: '30s',
  nodeGrace: '5m',
  matchWindow: '2s',
  logFilePath: '/var/log/ebpf_net_reducer.log',
  logLevel: 'info',
} as const;

/** Options as commander shows them: flag, description (with its variable) and default. */
export const OPTIONS: readonly OptionSpec[] = [
  { flags: '--host <address>', description: 'address the intake listens on', env: 'EBPF_NET_INTAKE_BIND', defaultValue: DEFAULTS.host },
  { flags: '--port <port>', description: 'intake port for collectors', env: 'EBPF_NET_INTAKE_PORT', defaultValue: DEFAULTS.port },
  { flags: '--prom <host:port>', description: 'where /metrics (Prometheus) and /api (JSON) are served', env: 'EBPF_NET_PROM_ADDR', defaultValue: DEFAULTS.prom },
  { flags: '--interval <duration>', description: 'aggregation window: series are computed and exported this often', env: 'EBPF_NET_INTERVAL', defaultValue: DEFAULTS.interval },
  { flags: '--db <file>', description: 'SQLite store file', env: 'EBPF_NET_DB', defaultValue: '$EBPF_NET_DATA_DIR/reducer.db (EBPF_NET_DATA_DIR defaults to /var/lib/ebpf-net)' },
  { flags: '--no-db', description: 'do not keep the SQLite store' },
  { flags: '--retention <duration>', description: 'how long the SQLite store keeps samples', env: 'EBPF_NET_RETENTION', defaultValue: DEFAULTS.retention },
  { flags: '--otlp-endpoint <host:port>', description: 'also export OTLP metrics over gRPC to this endpoint', env: 'EBPF_NET_OTLP_ENDPOINT', defaultValue: 'off' },
  { flags: '--aggregation <levels>', description: 'levels to export, comma-separated: node, process, container, workload', env: 'EBPF_NET_AGGREGATION', defaultValue: DEFAULTS.aggregation },
  { flags: '--max-series <n>', description: 'flow series limit; past it, new pairs go to an overflow series (counted)', env: 'EBPF_NET_MAX_SERIES', defaultValue: DEFAULTS.maxSeries },
  { flags: '--heartbeat-timeout <duration>', description: 'close a collector connection silent this long', env: 'EBPF_NET_HEARTBEAT_TIMEOUT', defaultValue: DEFAULTS.heartbeatTimeout },
  { flags: '--node-grace <duration>', description: "keep a disconnected collector's node this long", env: 'EBPF_NET_NODE_GRACE', defaultValue: DEFAULTS.nodeGrace },
  { flags: '--match-window <duration>', description: "how long a new flow seen from one end waits for its other end's collector before it is counted alone (keep it above the collectors' --interval)", env: 'EBPF_NET_MATCH_WINDOW', defaultValue: DEFAULTS.matchWindow },
  { flags: '--log-console', description: 'human-readable logs on the console' },
  { flags: '--no-log-file', description: 'do not write the JSON log file (EBPF_NET_LOG_FILE_PATH, default /var/log/ebpf_net_reducer.log)' },
  { flags: '--log-level <level>', description: `one of ${LOG_LEVELS.join(', ')}`, env: 'EBPF_NET_LOG_LEVEL', defaultValue: DEFAULTS.logLevel },
];

export function resolveConfig(flags: ReducerFlags, env: NodeJS.ProcessEnv = process.env): ReducerConfig {
  const str = (raw: string) => raw;
  const prom = parseHostPort(pick(flags.prom, env.EBPF_NET_PROM_ADDR, str, DEFAULTS.prom), '--prom');
  const dataDir = env.EBPF_NET_DATA_DIR || DEFAULTS.dataDir;
  const logLevel = pick(flags.logLevel, env.EBPF_NET_LOG_LEVEL, str, DEFAULTS.logLevel);
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UserError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(logLevel)}`, 2);
  const otlp = pick(flags.otlpEndpoint, env.EBPF_NET_OTLP_ENDPOINT, str, '');
  if (otlp !== '') parseHostPort(otlp, '--otlp-endpoint');
  const intervalMs = parseDuration(pick(flags.interval, env.EBPF_NET_INTERVAL, str, DEFAULTS.interval), '--interval');
  if (intervalMs < 100) throw new UserError('--interval must be at least 100ms', 2);
  return {
    intakeHost: pick(flags.host, env.EBPF_NET_INTAKE_BIND, str, DEFAULTS.host),
    intakePort: parsePort(pick(flags.port, env.EBPF_NET_INTAKE_PORT, str, DEFAULTS.port), '--port'),
    promHost: prom.host,
    promPort: prom.port,
    intervalMs,
    dbPath: flags.db === false ? undefined : pick(flags.db || undefined, env.EBPF_NET_DB, str, join(dataDir, 'reducer.db')),
    retentionMs: parseDuration(pick(flags.retention, env.EBPF_NET_RETENTION, str, DEFAULTS.retention), '--retention'),
    otlpEndpoint: otlp === '' ? undefined : otlp,
    levels: parseLevels(pick(flags.aggregation, env.EBPF_NET_AGGREGATION, str, DEFAULTS.aggregation)),
    maxSeries: parsePositiveInt(pick(flags.maxSeries, env.EBPF_NET_MAX_SERIES, str, DEFAULTS.maxSeries), '--max-series'),
    heartbeatTimeoutMs: parseDuration(pick(flags.heartbeatTimeout, env.EBPF_NET_HEARTBEAT_TIMEOUT, str, DEFAULTS.heartbeatTimeout), '--heartbeat-timeout'),
    nodeGraceMs: parseDuration(pick(flags.nodeGrace, env.EBPF_NET_NODE_GRACE, str, DEFAULTS.nodeGrace), '--node-grace'),
    matchWindowMs: parseDuration(pick(flags.matchWindow, env.EBPF_NET_MATCH_WINDOW, str, DEFAULTS.matchWindow), '--match-window'),
    logConsole: flags.logConsole ?? false,
    logFile: flags.logFile === false ? undefined : env.EBPF_NET_LOG_FILE_PATH || DEFAULTS.logFilePath,
    logLevel: logLevel as LogLevel,
  };
}
