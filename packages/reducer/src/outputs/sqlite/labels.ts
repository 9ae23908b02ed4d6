// Labels as stored: one canonical JSON text per label set (keys sorted), so that the same set
// always maps to the same series row whatever order the aggregator built it in.

import type { Labels } from '../report.js';

export function canonicalLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  // Aggregators usually build labels in one fixed order; when it is sorted, skip the copy.
  if (isSorted(keys)) return JSON.stringify(labels);
  keys.sort();
  const sorted: Record<string, string> = {};
  for (const key of keys) sorted[key] = labels[key] as string;
  return JSON.stringify(sorted);
}

function isSorted(keys: readonly string[]): boolean {
  for (let i = 1; i < keys.length; i++) if ((keys[i - 1] as string) > (keys[i] as string)) return false;
  return true;
}

const SOURCE = 'source_';
const DEST = 'dest_';

/** A flow series names both ends: at least one source_* and one dest_* label. */
export function isFlow(labels: Labels): boolean {
  let source = false;
  let dest = false;
  for (const key in labels) {
    if (key.startsWith(SOURCE)) source = true;
    else if (key.startsWith(DEST)) dest = true;
  }
  return source && dest;
}

export interface FlowEnds {
  source: Record<string, string>;
  dest: Record<string, string>;
}

/** The two ends of a flow, prefixes removed: source_node → source.node. */
export function flowEnds(labels: Labels): FlowEnds {
  const ends: FlowEnds = { source: {}, dest: {} };
  for (const [key, value] of Object.entries(labels)) {
    if (key.startsWith(SOURCE)) ends.source[key.slice(SOURCE.length)] = value;
    else if (key.startsWith(DEST)) ends.dest[key.slice(DEST.length)] = value;
  }
  return ends;
}
