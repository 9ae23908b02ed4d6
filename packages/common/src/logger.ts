// Logging for both daemons: JSON lines to a file (for machines), and with --log-console a
// readable stream on stderr (for people). pino writes both without blocking the event loop.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  name: string;
  level: LogLevel;
  /** Human-readable lines on stderr. */
  console: boolean;
  /** JSON lines to this file; undefined for none. */
  file?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const targets: pino.TransportTargetOptions[] = [];
  if (options.file) {
    mkdirSync(dirname(options.file), { recursive: true });
    targets.push({ target: 'pino/file', level: options.level, options: { destination: options.file, mkdir: true } });
  }
  if (options.console) {
    targets.push({ target: 'pino-pretty', level: options.level, options: { destination: 2, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } });
  }
  if (targets.length === 0) return pino({ name: options.name, level: 'silent' });
  return pino({ name: options.name, level: options.level }, pino.transport({ targets }));
}
