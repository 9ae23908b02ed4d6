#!/usr/bin/env node
// reducer: joins the collectors' sockets into flows and exports time series. The option surface
// is declared here; the service arrives with the reducer issue.

import { Command } from 'commander';

const program = new Command('reducer')
  .description('Takes many kernel-collectors, joins both ends of each connection into one flow, and exports time series.')
  .option('--port <port>', 'intake port for collectors', '8000')
  .option('--log-console', 'human-readable logs on the console', false)
  .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
  .action(() => {
    console.error('reducer: the service is not built yet; see the open issues.');
    process.exit(2);
  });

program.parse();
