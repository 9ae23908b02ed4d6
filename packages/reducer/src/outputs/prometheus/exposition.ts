// Prometheus text exposition (format 0.0.4) of an interval report: one HELP and TYPE per
// metric family, counters with `_total`, histograms as cumulative `_bucket{le}`, `_sum`, `_count`.

import type { HistogramValue, IntervalReport, Labels, MetricDef, SeriesPoint } from '../report.js';

export function renderExposition(report: IntervalReport): string {
  const families = new Map<MetricDef, SeriesPoint[]>();
  for (const p of report.points) {
    let list = families.get(p.metric);
    if (!list) families.set(p.metric, (list = []));
    list.push(p);
  }
  const out: string[] = [];
  for (const [metric, points] of families) {
    const name = metric.kind === 'counter' ? `${metric.name}_total` : metric.name;
    out.push(`# HELP ${name} ${escapeHelp(metric.help)}`, `# TYPE ${name} ${metric.kind}`);
    for (const p of points) {
      if (metric.kind === 'histogram' && p.histogram) renderHistogram(out, metric.name, p.labels, p.histogram);
      else out.push(`${name}${labelText(p.labels)} ${formatValue(p.value)}`);
    }
  }
  out.push('');
  return out.join('\n');
}

function renderHistogram(out: string[], name: string, labels: Labels, h: HistogramValue): void {
  let cumulative = 0;
  h.bounds.forEach((bound, i) => {
    cumulative += h.bucketCounts[i]!;
    out.push(`${name}_bucket${labelText(labels, formatValue(bound))} ${cumulative}`);
  });
  cumulative += h.bucketCounts[h.bounds.length]!;
  out.push(`${name}_bucket${labelText(labels, '+Inf')} ${cumulative}`);
  out.push(`${name}_sum${labelText(labels)} ${formatValue(h.sum)}`);
  out.push(`${name}_count${labelText(labels)} ${h.count}`);
}

/** Empty values are left out: Prometheus treats them as absent anyway. */
function labelText(labels: Labels, le?: string): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels)) if (v !== '') parts.push(`${k}="${escapeLabel(v)}"`);
  if (le !== undefined) parts.push(`le="${le}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
