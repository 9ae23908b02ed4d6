#!/usr/bin/env node
// kernel-collector: the per-node eBPF daemon. The option surface is declared here; the daemon
// itself arrives with the eBPF and collector issues.

import { Command } from 'commander';

const program = new Command('kernel-collector')
  .description(
    'Watches TCP and UDP sockets, processes and containers on this node with eBPF, and streams them to the reducer.\n' +
      'Environment: EBPF_NET_INTAKE_HOST and EBPF_NET_INTAKE_PORT (required) name the reducer.',
  )
  .option('--log-console', 'human-readable logs on the console', false)
  .option('--no-log-file', 'do not write the JSON log file')
  .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
  .action(() => {
    console.error('kernel-collector: the daemon is not built yet; see the open issues.');
    process.exit(2);
  });

program.parse();
