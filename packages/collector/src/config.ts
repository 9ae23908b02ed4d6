// The collector's configuration: each knob from its flag, else its EBPF_NET_* variable, else its
// default. The reducer's address has no default: it must be given.

import { existsSync } from 'node:fs';
import { type LogLevel, LOG_LEVELS, type OptionSpec, UserError, parseDuration, parsePort, parsePositiveInt, pick } from '@ebpf-net/common';

export interface CollectorConfig {
  intakeHost: string;
  intakePort: number;
  /** The host's filesystem as mounted in a container, or '' to read this machine's own paths. */
  hostDir: string;
  dataDir: string;
  intervalMs: number;
  bufferBytes: number;
  maxSockets: number;
  ringBytes: number;
  /** Network namespaces to watch (names under /run/netns, or inode numbers); all when empty. */
  netns: string[];
  /** Overrides the node's identity (machine id) and host name; several collectors on one kernel need it. */
  nodeName: string | undefined;
  /** Watch UDP; off: no program runs on a send or receive (see --udp). */
  udp: boolean;
  /** Which build of the socket programs to load (see --hooks). */
  hooks: HookChoice;
  logConsole: boolean;
  logFile: string | undefined;
  logLevel: LogLevel;
}

export interface CollectorFlags {
  interval?: string;
  bufferBytes?: string;
  maxSockets?: string;
  ringBytes?: string;
  netns?: string;
  nodeName?: string;
  udp?: string;
  hooks?: string;
  logConsole?: boolean;
  logFile?: boolean;
  logLevel?: string;
}

export const DEFAULTS = {
  hostDir: '/hostfs',
  dataDir: '/var/lib/ebpf-net',
  interval: '1s',
  bufferBytes: String(32 * 1024 * 1024),
  maxSockets: '65536',
  ringBytes: String(8 * 1024 * 1024),
  udp: 'on',
  hooks: 'auto',
  logFilePath: '/var/log/ebpf_net.log',
  logLevel: 'info',
} as const;

export const OPTIONS: readonly OptionSpec[] = [
  { flags: '--interval <duration>', description: 'how often socket counters are read and deltas sent', env: 'EBPF_NET_INTERVAL', defaultValue: DEFAULTS.interval },
  { flags: '--buffer-bytes <n>', description: 'bytes that may wait to be sent to the reducer; past it, messages are dropped and counted', env: 'EBPF_NET_BUFFER_BYTES', defaultValue: DEFAULTS.bufferBytes },
  { flags: '--max-sockets <n>', description: 'sockets tracked at once: the collector\'s table and the kernel\'s (UDP: this many entries; TCP: the next power of two of slots; keep it at twice the connections held at once)', env: 'EBPF_NET_MAX_SOCKETS', defaultValue: DEFAULTS.maxSockets },
  { flags: '--ring-bytes <n>', description: 'kernel ring buffer for lifecycle events, a power of two', env: 'EBPF_NET_RING_BYTES', defaultValue: DEFAULTS.ringBytes },
  { flags: '--netns <list>', description: 'watch only these network namespaces: names under /run/netns or inode numbers, comma-separated', env: 'EBPF_NET_NETNS', defaultValue: 'all' },
  { flags: '--node-name <name>', description: "this node's name and identity towards the reducer (in Kubernetes: the node name)", env: 'EBPF_NET_NODE_NAME', defaultValue: 'the host name, with /etc/machine-id as identity' },
  {
    flags: '--udp <mode>',
    description:
      'on: watch UDP sockets. off: the send/recv hooks, which run on every socket call of the node, are not attached ' +
      '(the cheapest mode for TCP-heavy nodes); TCP keeps all its counters, but an accepted connection is owned by ' +
      'the process that listens, not the one that accepted it',
    env: 'EBPF_NET_UDP',
    defaultValue: DEFAULTS.udp,
  },
  {
    flags: '--hooks <kind>',
    description:
      'how the socket programs attach: typed (BTF-typed tracepoints: a socket field is a plain load), raw (raw ' +
      'tracepoints: each field a helper call, for kernels that refuse tracing programs), or auto: typed when the ' +
      'kernel takes it, else raw',
    env: 'EBPF_NET_HOOKS',
    defaultValue: DEFAULTS.hooks,
  },
  { flags: '--log-console', description: 'human-readable logs on the console' },
  { flags: '--no-log-file', description: 'do not write the JSON log file (EBPF_NET_LOG_FILE_PATH, default /var/log/ebpf_net.log)' },
  { flags: '--log-level <level>', description: `one of ${LOG_LEVELS.join(', ')}`, env: 'EBPF_NET_LOG_LEVEL', defaultValue: DEFAULTS.logLevel },
];

/** The environment variables that are read without a flag. */
export const ENVIRONMENT = [
  ['EBPF_NET_INTAKE_HOST', "the reducer's host name or address (required)"],
  ['EBPF_NET_INTAKE_PORT', "the reducer's intake port, usually 8000 (required)"],
  ['EBPF_NET_HOST_DIR', "where the host's filesystem is mounted when running in a container (default /hostfs; used when it exists)"],
  ['EBPF_NET_DATA_DIR', 'state kept across restarts (default /var/lib/ebpf-net): a clean stop saves the counters of the open TCP connections, so that the next start on the same boot (within 15 min) reports what moved in between'],
  ['EBPF_NET_LOG_FILE_PATH', 'the JSON log file (default /var/log/ebpf_net.log)'],
  ['EBPF_NET_BPF_OBJECT', 'the compiled BPF object with raw tracepoints; its typed build is beside it, as *.typed.bpf.o (default: bpf/.output/ebpf_net.bpf.o of this checkout)'],
] as const;

export function resolveConfig(flags: CollectorFlags, env: NodeJS.ProcessEnv = process.env): CollectorConfig {
  const str = (raw: string) => raw;
  const host = env.EBPF_NET_INTAKE_HOST;
  if (!host) throw new UserError("EBPF_NET_INTAKE_HOST is not set: set it to the reducer's host (and EBPF_NET_INTAKE_PORT to its intake port, usually 8000)", 2);
  const portText = env.EBPF_NET_INTAKE_PORT;
  if (!portText) throw new UserError("EBPF_NET_INTAKE_PORT is not set: set it to the reducer's intake port, usually 8000", 2);
  const logLevel = pick(flags.logLevel, env.EBPF_NET_LOG_LEVEL, str, DEFAULTS.logLevel);
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UserError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(logLevel)}`, 2);
  const ringBytes = parsePositiveInt(pick(flags.ringBytes, env.EBPF_NET_RING_BYTES, str, DEFAULTS.ringBytes), '--ring-bytes');
  if ((ringBytes & (ringBytes - 1)) !== 0 || ringBytes < 4096) throw new UserError('--ring-bytes must be a power of two, at least 4096', 2);
  const hostDir = env.EBPF_NET_HOST_DIR ?? DEFAULTS.hostDir;
  const netns = pick(flags.netns, env.EBPF_NET_NETNS, str, '');
  const udp = pick(flags.udp, env.EBPF_NET_UDP, str, DEFAULTS.udp);
  if (udp !== 'on' && udp !== 'off') throw new UserError(`--udp must be on or off, not ${JSON.stringify(udp)}`, 2);
  const hooks = pick(flags.hooks, env.EBPF_NET_HOOKS, str, DEFAULTS.hooks);
  if (!isHookChoice(hooks)) throw new UserError(`--hooks must be auto, typed or raw, not ${JSON.stringify(hooks)}`, 2);
  return {
    intakeHost: host,
    intakePort: parsePort(portText, 'EBPF_NET_INTAKE_PORT'),
    hostDir: hostDir !== '' && existsSync(hostDir) ? hostDir : '',
    dataDir: env.EBPF_NET_DATA_DIR || DEFAULTS.dataDir,
    intervalMs: parseDuration(pick(flags.interval, env.EBPF_NET_INTERVAL, str, DEFAULTS.interval), '--interval'),
    bufferBytes: parsePositiveInt(pick(flags.bufferBytes, env.EBPF_NET_BUFFER_BYTES, str, DEFAULTS.bufferBytes), '--buffer-bytes'),
    maxSockets: parsePositiveInt(pick(flags.maxSockets, env.EBPF_NET_MAX_SOCKETS, str, DEFAULTS.maxSockets), '--max-sockets'),
    ringBytes,
    netns: netns === '' || netns === 'all' ? [] : netns.split(',').map((s) => s.trim()).filter(Boolean),
    nodeName: pick(flags.nodeName, env.EBPF_NET_NODE_NAME, str, '') || undefined,
    udp: udp === 'on',
    hooks,
    logConsole: flags.logConsole ?? false,
    logFile: flags.logFile === false ? undefined : env.EBPF_NET_LOG_FILE_PATH || DEFAULTS.logFilePath,
    logLevel: logLevel as LogLevel,
  };
}

export type HookChoice = 'auto' | 'typed' | 'raw';

function isHookChoice(value: string): value is HookChoice {
  return value === 'auto' || value === 'typed' || value === 'raw';
}
