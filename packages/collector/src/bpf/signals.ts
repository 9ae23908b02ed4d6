// Detach everything on SIGINT / SIGTERM (and on process exit): links are destroyed, objects
// closed, rings unmapped. Nothing is pinned, so nothing stays in the kernel after that.

import type { Logger } from 'pino';
import { closeAllBpfObjects } from './registry.js';

export interface SignalHandlerOptions {
  logger?: Logger;
  /** Exit after closing, with 128 + the signal number (default true). */
  exit?: boolean;
  signals?: NodeJS.Signals[];
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/** Installs the handlers; returns a function that removes them. */
export function installSignalHandlers(options: SignalHandlerOptions = {}): () => void {
  const { logger, exit = true, signals = ['SIGINT', 'SIGTERM'] } = options;
  const onSignal = (signal: NodeJS.Signals): void => {
    const closed = closeAllBpfObjects((error) => logger?.error({ err: error }, 'closing a BPF object failed'));
    logger?.info({ signal, closed }, 'BPF objects closed on signal');
    if (exit) process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 0));
  };
  // process.exit() from elsewhere: close synchronously before the process goes.
  const onExit = (): void => {
    closeAllBpfObjects();
  };
  for (const signal of signals) process.on(signal, onSignal);
  process.on('exit', onExit);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
    process.off('exit', onExit);
  };
}
