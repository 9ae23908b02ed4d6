// @ebpf-net/collector: the per-node daemon. Its command line is src/cli.ts; this is what other
// packages (docs, tests) may use.

export { OPTIONS, ENVIRONMENT, resolveConfig, type CollectorConfig } from './config.js';
export { COLLECTOR_VERSION } from './collector.js';
