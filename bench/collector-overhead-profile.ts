// Reads the V8 CPU profiles (node --cpu-prof) the collector wrote during the "with" runs, and
// sums self time by function and by source file, to name what costs the collector its CPU.

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  sampledSeconds: number;
  topFunctions: Array<{ fn: string; selfPercent: number }>;
  topFiles: Array<{ file: string; selfPercent: number }>;
}

/** Shortens a file URL to its place in the checkout or in node_modules. */
function shortFile(url: string): string {
  if (!url) return '(native/vm)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length).replace(/^\.pnpm\/[^/]+\/node_modules\//, '');
  const pk = url.indexOf('/packages/');
  if (pk >= 0) return url.slice(pk + 1);
  return url.replace(/^file:\/\//, '');
}

/**
 * Self time by function and by file over the given profiles, as percent of all samples. When a
 * window is given (CLOCK_MONOTONIC µs, as process.hrtime and V8's profile timestamps), only the
 * samples inside it count: the wrk run, not start-up and shutdown.
 */
export function summarizeProfiles(files: Array<{ path: string; fromUs?: number; toUs?: number }>, top = 12): ProfileSummary {
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (const { path, fromUs, toUs } of files) {
    const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    let t = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      const dt = profile.timeDeltas[i] ?? 0;
      t += dt;
      if ((fromUs !== undefined && t < fromUs) || (toUs !== undefined && t > toUs)) continue;
      const node = nodes.get(profile.samples[i]!);
      if (!node) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      // (idle) is waiting in epoll, not work; (program) is native code outside JS (kept).
      if (functionName === '(idle)') continue;
      const file = shortFile(url);
      const key = `${functionName || '(anonymous)'} ${file}${url ? `:${lineNumber + 1}` : ''}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
      byFile.set(file, (byFile.get(file) ?? 0) + dt);
      total += dt;
    }
  }
  const rank = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return {
    sampledSeconds: total / 1e6,
    topFunctions: rank(byFunction).map(([fn, us]) => ({ fn, selfPercent: Number(((us / total) * 100).toFixed(1)) })),
    topFiles: rank(byFile).map(([file, us]) => ({ file, selfPercent: Number(((us / total) * 100).toFixed(1)) })),
  };
}
