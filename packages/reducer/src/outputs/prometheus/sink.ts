// The Prometheus output keeps the latest interval's report and renders it when scraped
// (at most once per interval, however often it is scraped).

import type { IntervalReport, ReportSink } from '../report.js';
import { renderExposition } from './exposition.js';

export class PrometheusSink implements ReportSink {
  readonly name = 'prometheus';
  private latest: IntervalReport | undefined;
  private rendered: string | undefined;

  write(report: IntervalReport): void {
    this.latest = report;
    this.rendered = undefined;
  }

  /** The exposition text; empty before the first interval ends. */
  exposition(): string {
    if (!this.latest) return '';
    this.rendered ??= renderExposition(this.latest);
    return this.rendered;
  }

  async close(): Promise<void> {}
}
