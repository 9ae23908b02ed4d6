// Configuration helpers: flags, then EBPF_NET_* environment variables, then defaults.

import { UserError } from './user-error.js';

/** A flag's value if given, else the environment variable's, else the default. */
export function pick<T>(flag: T | undefined, env: string | undefined, parse: (raw: string) => T, fallback: T): T {
  if (flag !== undefined) return flag;
  if (env !== undefined && env !== '') return parse(env);
  return fallback;
}

export function parsePort(raw: string, what: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UserError(`${what} must be a port number (0-65535), not ${JSON.stringify(raw)}`, 2);
  return n;
}

/** `host:port`, `[v6]:port` or `:port` (all interfaces). */
export function parseHostPort(raw: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(raw);
  if (!m) throw new UserError(`${what} must be host:port, not ${JSON.stringify(raw)}`, 2);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: parsePort(m[3]!, what) };
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `500ms`, `10s`, `5m`, `2h`, `7d`, in milliseconds. */
export function parseDuration(raw: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(raw.trim());
  if (!m) throw new UserError(`${what} must be a duration like 500ms, 10s, 5m, 2h or 7d, not ${JSON.stringify(raw)}`, 2);
  return Number(m[1]) * UNITS[m[2]!]!;
}

export function parsePositiveInt(raw: string, what: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new UserError(`${what} must be a positive whole number, not ${JSON.stringify(raw)}`, 2);
  return n;
}
