// What both daemons' command lines share: options described in one table, and a graceful stop.

import { type Command, Option } from 'commander';
import type { Logger } from 'pino';

/** One option: its flags and text, the variable that can set it, and the default shown in --help. */
export interface OptionSpec {
  flags: string;
  description: string;
  env?: string;
  defaultValue?: string;
}

/**
 * Adds the options to the program. Defaults are applied by each daemon's config resolution
 * (after the environment variables), so here they are only shown.
 */
export function addOptions(program: Command, options: readonly OptionSpec[]): void {
  for (const o of options) {
    const text = [o.description, o.env && `[${o.env}]`, o.defaultValue && `(default: ${o.defaultValue})`].filter(Boolean).join(' ');
    program.addOption(new Option(o.flags, text));
  }
}

/** How long a graceful stop may take before the process exits anyway. */
export const STOP_DEADLINE_MS = 10_000;

/**
 * On SIGINT or SIGTERM: logs, runs `stop` once, flushes the log and exits 0. A stop that does
 * not finish within STOP_DEADLINE_MS is logged and the process exits 1: a daemon never hangs
 * on its way out.
 */
export function stopOnSignals(log: Logger, what: string, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `stopping: ${what}`);
    setTimeout(() => {
      log.error(`the stop did not finish within ${STOP_DEADLINE_MS / 1000} s; exiting anyway`);
      log.flush();
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    await stop();
    log.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void onSignal('SIGINT'));
  process.on('SIGTERM', () => void onSignal('SIGTERM'));
}
