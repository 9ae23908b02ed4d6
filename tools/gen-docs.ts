// Writes the generated documents under docs/ from the code, so that they cannot drift from it:
// protocol.md (the wire schema), configuration.md (every flag and variable of both binaries)
// and metrics.md (every exported metric). With --check, fails when a file is out of date.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { OptionSpec } from '@ebpf-net/common';
import { ENVIRONMENT, OPTIONS as COLLECTOR_OPTIONS } from '@ebpf-net/collector';
import { renderProtocolDoc } from '@ebpf-net/protocol';
import { type MetricDef, OPTIONS as REDUCER_OPTIONS, RTT_BOUNDS_SECONDS, flowMetrics, selfMetrics } from '@ebpf-net/reducer';

const GENERATED = (source: string) => `<!-- Generated from ${source} by \`pnpm docs\`. Do not edit. -->`;
const cell = (text: string) => text.replace(/\|/g, '\\|');

function optionTable(options: readonly OptionSpec[]): string[] {
  return [
    '| flag | environment | default | what it does |',
    '|---|---|---|---|',
    ...options.map((o) => `| \`${o.flags}\` | ${o.env ? `\`${o.env}\`` : ''} | ${o.defaultValue ? cell(o.defaultValue) : ''} | ${cell(o.description)} |`),
  ];
}

function configurationDoc(): string {
  return [
    '# Configuration',
    '',
    GENERATED('packages/collector/src/config.ts and packages/reducer/src/config.ts'),
    '',
    'Each setting comes from its flag, else its environment variable, else its default.',
    '',
    '## kernel-collector',
    '',
    'Runs as root on every node. `kernel-collector --help` prints the same.',
    '',
    ...optionTable(COLLECTOR_OPTIONS),
    '',
    'Environment variables without a flag:',
    '',
    '| variable | what it is |',
    '|---|---|',
    ...ENVIRONMENT.map(([name, text]) => `| \`${name}\` | ${cell(text)} |`),
    '',
    '## reducer',
    '',
    'Runs once per cluster. `reducer --help` prints the same; `reducer query --help` explains the query commands.',
    '',
    ...optionTable(REDUCER_OPTIONS),
    '',
  ].join('\n');
}

function metricRows(metrics: Record<string, MetricDef>): string[] {
  return Object.values(metrics).map((m) => {
    const name = m.kind === 'counter' ? `${m.name}_total` : m.name;
    return `| \`${name}\` | \`${m.otelName}\` | ${m.kind} | ${m.unit} | ${cell(m.help)} |`;
  });
}

function metricsDoc(): string {
  const header = ['| Prometheus | OTLP | kind | unit | what it counts |', '|---|---|---|---|---|'];
  return [
    '# Metrics',
    '',
    GENERATED('packages/reducer/src/aggregation/metrics.ts'),
    '',
    'The reducer exports these on `/metrics` (Prometheus), to OTLP, and into its SQLite store.',
    '',
    '## Flows',
    '',
    'Every flow series has the labels `aggregation` (the level: node, process, container or workload) and, for each end,',
    '`source_*` and `dest_*` labels of that level: `node`; `node` and `process`; `node` and `container`; `namespace` and `workload`.',
    '`source` is the end a measurement belongs to (the sender of the bytes, the one that retransmitted or measured the RTT);',
    'connection counts are oriented from the client (source) to the server (dest). An end no collector reported is named by',
    'the node that owns its address, else by the address itself; a new flow seen from one end first waits up to `--match-window`',
    "(2 s) for the other end's collector, so that a connection two collectors report with some skew is counted once, under",
    'both ends. Bytes are counted by the end that sent them when it was reported, and an end that closed first still names',
    "its side (with its process, though that exited) until the other end's last report. Past `--max-series`, new pairs are",
    'folded into a series whose',
    `labels are \`__overflow__\`. RTT histogram buckets (seconds): ${RTT_BOUNDS_SECONDS.join(', ')}.`,
    '',
    ...header,
    ...metricRows(flowMetrics),
    '',
    "## The reducer's own health",
    '',
    ...header,
    ...metricRows(selfMetrics),
    '',
  ].join('\n');
}

const docs: Record<string, string> = {
  'protocol.md': renderProtocolDoc(),
  'configuration.md': configurationDoc(),
  'metrics.md': metricsDoc(),
};
const dir = new URL('../../docs/', import.meta.url);
const check = process.argv.includes('--check');
let stale = 0;
for (const [file, text] of Object.entries(docs)) {
  const path = fileURLToPath(new URL(file, dir));
  if (!check) {
    writeFileSync(path, text);
    console.log(`wrote ${path}`);
    continue;
  }
  let current = '';
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    // missing: stale
  }
  if (current !== text) {
    console.error(`${path} is out of date with the code: run \`pnpm docs\` and commit the result.`);
    stale++;
  }
}
if (check && stale === 0) console.log('docs/ is up to date.');
process.exit(stale > 0 ? 1 : 0);
