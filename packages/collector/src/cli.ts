#!/usr/bin/env node
// kernel-collector: the per-node eBPF daemon. Watches TCP and UDP sockets, processes and
// containers, and streams them to the reducer named by EBPF_NET_INTAKE_HOST and _PORT.

import { Command } from 'commander';
import { UserError, addOptions, createLogger, exitOnUserError, stopOnSignals } from '@ebpf-net/common';
import { BpfLoadError, BpfNotPermittedError, BtfMissingError, LibbpfUnavailableError, closeAllBpfObjects } from './bpf/index.js';
import { COLLECTOR_VERSION, Collector } from './collector.js';
import { type CollectorFlags, ENVIRONMENT, OPTIONS, resolveConfig } from './config.js';
import { BpfObjectMissingError } from './kernel/probes.js';

/** The binding's typed errors, as one line that says what to do. */
function explain(error: unknown): unknown {
  if (error instanceof BpfNotPermittedError) {
    return new UserError('the kernel refused bpf(): run kernel-collector as root (in a container: privileged, see deploy/README.md); check kernel.unprivileged_bpf_disabled and lockdown');
  }
  if (error instanceof BtfMissingError) {
    return new UserError('this kernel has no BTF (/sys/kernel/btf/vmlinux): ebpf-net needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distributions since 5.8)');
  }
  if (error instanceof LibbpfUnavailableError) return new UserError(`libbpf is not installed: install the libbpf1 package (${error.message})`);
  if (error instanceof BpfObjectMissingError) return new UserError(error.message);
  if (error instanceof BpfLoadError) {
    return new UserError(`the kernel's verifier refused BPF program ${error.programName}: ${error.message.split('\n')[0]}; run with --log-level debug for the verifier log`);
  }
  return error;
}

async function run(flags: CollectorFlags): Promise<void> {
  const config = resolveConfig(flags);
  if (process.getuid?.() !== 0) throw new UserError('kernel-collector must run as root (it loads BPF programs): try sudo');
  const log = createLogger({ name: 'kernel-collector', level: config.logLevel, console: config.logConsole, file: config.logFile });
  const collector = new Collector(config, log);
  // A signal during start-up is honoured once start-up returns: libbpf calls in progress must
  // not be interrupted (closing objects from a signal handler then would deadlock the binding).
  let signalled: string | undefined;
  const early = (signal: string) => {
    signalled = signal;
    log.info({ signal }, 'stopping once start-up has finished');
  };
  process.on('SIGINT', early);
  process.on('SIGTERM', early);
  // Any exit, even a crash, closes the BPF objects first.
  process.on('exit', () => closeAllBpfObjects());
  try {
    await collector.start();
  } catch (error) {
    await collector.stop();
    throw explain(error);
  } finally {
    process.off('SIGINT', early);
    process.off('SIGTERM', early);
  }
  if (signalled) {
    await collector.stop();
    log.flush();
    process.exit(0);
  }
  log.info({ version: COLLECTOR_VERSION, reducer: `${config.intakeHost}:${config.intakePort}`, intervalMs: config.intervalMs }, 'kernel-collector running');
  stopOnSignals(log, 'sending the last deltas and detaching the BPF programs', () => collector.stop());
}

const program = new Command('kernel-collector')
  .version(COLLECTOR_VERSION)
  .description(
    'Watches TCP and UDP sockets, processes and containers on this node with eBPF (tracepoints only), and streams them to the reducer.\n' +
      'Runs as root. Every option can also be set by the environment variable in brackets.',
  )
  .addHelpText('after', `\nEnvironment:\n${ENVIRONMENT.map(([name, text]) => `  ${name.padEnd(24)} ${text}`).join('\n')}`);
addOptions(program, OPTIONS);
program.action((flags: CollectorFlags) => run(flags).catch((e) => exitOnUserError('kernel-collector', explain(e))));

await program.parseAsync();
