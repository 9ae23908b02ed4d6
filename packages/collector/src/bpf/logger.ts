// The logger used when the caller passes none: warnings and errors, JSON on stderr.

import { pino, type Logger } from 'pino';

let fallback: Logger | undefined;

export function defaultLogger(): Logger {
  fallback ??= pino({ name: 'bpf', level: 'warn' }, pino.destination({ fd: 2, sync: true }));
  return fallback;
}
