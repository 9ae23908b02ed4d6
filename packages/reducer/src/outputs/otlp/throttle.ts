// Lets a repeated warning through at most once per interval, and says how many were held back,
// so an endpoint down for an hour gives a few log lines, not one per report.

export class LogThrottle {
  private last = -Infinity;
  private held = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The number of occurrences held back since the last one let through, or undefined to hold this one back. */
  take(): number | undefined {
    const t = this.now();
    if (t - this.last < this.intervalMs) {
      this.held++;
      return undefined;
    }
    this.last = t;
    const held = this.held;
    this.held = 0;
    return held;
  }
}
