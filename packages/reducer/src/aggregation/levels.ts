// Aggregation levels: how finely flows are grouped into series, and the labels of each.

import { UserError } from '@ebpf-net/common';

export const LEVELS = ['node', 'process', 'container', 'workload'] as const;
export type Level = (typeof LEVELS)[number];

/** What is known of one end of a flow. */
export interface EndpointInfo {
  node: string;
  process: string;
  container: string;
  namespace: string;
  workload: string;
}

/** The label values of an endpoint at a level, in a fixed order (see labelNames). */
export function endpointValues(level: Level, e: EndpointInfo): string[] {
  switch (level) {
    case 'node':
      return [e.node];
    case 'process':
      return [e.node, e.process];
    case 'container':
      return [e.node, e.container];
    case 'workload':
      return [e.namespace, e.workload];
  }
}

export function labelNames(level: Level): string[] {
  switch (level) {
    case 'node':
      return ['node'];
    case 'process':
      return ['node', 'process'];
    case 'container':
      return ['node', 'container'];
    case 'workload':
      return ['namespace', 'workload'];
  }
}

export function parseLevels(raw: string): Level[] {
  const levels = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const l of levels) {
    if (!(LEVELS as readonly string[]).includes(l)) throw new UserError(`--aggregation: unknown level ${JSON.stringify(l)}; levels are ${LEVELS.join(', ')}`, 2);
  }
  if (levels.length === 0) throw new UserError(`--aggregation needs at least one of ${LEVELS.join(', ')}`, 2);
  return [...new Set(levels)] as Level[];
}

/**
 * The workload behind a pod name: a Deployment's pod `web-7d9c8b6f5-x2x9q` belongs to `web`,
 * a StatefulSet's `db-0` to `db`, a DaemonSet's `agent-x2x9q` to `agent`.
 */
export function workloadOf(podName: string): string {
  if (podName === '') return '';
  const deployment = /^(.+)-[a-z0-9]{6,10}-[a-z0-9]{5}$/.exec(podName);
  if (deployment) return deployment[1]!;
  const other = /^(.+)-([0-9]+|[a-z0-9]{5})$/.exec(podName);
  return other ? other[1]! : podName;
}
