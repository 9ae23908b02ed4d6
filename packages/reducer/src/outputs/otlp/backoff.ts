// Retry delays: exponential from initialMs, capped at maxMs, with ±20% jitter so reducers that
// lost the same collector do not all come back in the same instant.

export interface BackoffOptions {
  /** Delay before the first retry. */
  readonly initialMs: number;
  /** Longest delay between two attempts. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 30_000 };

/** Delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.min(options.maxMs, Math.round(base * (0.8 + 0.4 * random())));
}
