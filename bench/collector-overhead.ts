// bench/collector-overhead: what the kernel-collector costs a busy web server, on this machine.
//
// nginx (one worker, a 3-byte answer, no access log) on a free loopback port is loaded by wrk for
// --seconds per run, in two workloads:
//   keep_alive       wrk -t1 -c32 -d<s>s URL                       (32 long-lived connections)
//   new_connection   wrk -t1 -c32 -d<s>s -H 'Connection: close' URL (one connection per request)
// Each workload alternates runs WITHOUT the collector and WITH it (started for the run, sending to
// a reducer the bench started, then stopped), and, when libbpf-tools' tcplife is installed and
// works, WITH tcplife instead (the peer the issue measured at about 26% loss on new_connection):
// without, with, tcplife, without, with, tcplife, ... --rounds times, so drift hits all alike.
//
// One JSON line per figure (emit() of report.ts):
//   setup                   what ran, versions, pinning, other BPF tracepoint programs present
//   <workload>_run          each run: requests/s, errors, CPU (in % of one core) of the agent
//                           (collector or tcplife; its system-call part apart), reducer, nginx,
//                           wrk; and in cores: irq+softirq, other BPF tracers (processes holding
//                           BPF programs, e.g. another collector: they see this traffic too), and
//                           the rest of the machine (other_busy_cores): runs with much of either
//                           were disturbed
//   <workload>              medians without and with the collector, ratio (with/without, of the
//                           medians, and the median of each round's own ratio), loss in percent,
//                           the collector's CPU (% of one core; s per 10k connections), targets;
//                           workload_cpu_per_request_ratio: CPU of nginx + wrk + interrupts per
//                           request, with/without (the BPF programs run there; steadier than
//                           requests/s when other work shares the machine, but it also counts
//                           the contention of one more busy process)
//   <workload>_tcplife      the same for tcplife, as a comparison
//   <workload>_profile      with EBPF_NET_BENCH_CPU_PROF=<dir>: the collector's hottest functions
//                           (node --cpu-prof, self time, wrk's window only; profiles kept in <dir>)
//   collector_health        the reducer's own counters at the end: messages received, events the
//                           collector reported lost
// Targets: loss <= 5% (new_connection), <= 2% (keep_alive); collector <= 10% of one core at 10k
// new connections/s (i.e. <= 0.1 CPU s per 10k connections).
//
//   node bench/dist/collector-overhead.js [--seconds 10] [--rounds 3] [--warmup 3] [--pin] [--no-tcplife]
//                                         [--sink] [--kernel-only] [--floor] [--udp on|off]
//                                         [--workload all|keep_alive|new_connection]
//
// --kernel-only adds a run per round with the collector stopped (SIGSTOP) for wrk's window: its
// programs stay attached and run, nothing drains the ring (a full ring drops records, each a little
// cheaper than a written one), so the loss left is the BPF programs' own time, spent on the
// workload's threads; <workload>_kernel_only reports it beside the full collector's.
// --floor adds a run per round with the floor attached instead of the collector: programs with the
// names and on the hooks of the collector's socket programs (tracepoints, and the cgroup ones on the
// cgroup v2 root) that do nothing (native/floor.bpf.c, built with clang-16, held by floor-holder.js).
// <workload>_floor is what any program on those hooks costs these workloads, before any work.
// --sink replaces the reducer with a process that discards the collector's stream: on a 2-core
// machine the reducer's CPU otherwise counts against nginx too, which it would not in a deployment
// (the reducer runs elsewhere). The default keeps the real reducer, as asked. --udp off runs the
// collector with --udp off: no program on sends and receives (TCP-only mode).
//
// Root only (the collector loads BPF programs). Needs wrk and nginx-light (Debian), bpftool; it
// installs nothing. --pin puts wrk on CPU 0 and nginx on CPU 1 (taskset); by default nothing is
// pinned. Everything it starts runs in a process group of its own and is stopped at the end, also
// on error or SIGINT; then every BPF program the collector (or tcplife) held must be gone, else it
// says so and exits 1.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarizeProfiles } from './collector-overhead-profile.js';
import { buildFloorObject } from './floor-object.js';
import {
  CLOCK_TICKS, Child, type WrkResult, bpfHolders, connectedTo, cpuSeconds, cpuTimes, freePort, groupCpuSeconds, heldBpfPrograms, loadedPrograms, machineCpu, median, parseWrk, sleep, which,
} from './collector-overhead-procs.js';
import { emit } from './report.js';

const BENCH = 'collector-overhead';
const ROOT = fileURLToPath(new URL('../../', import.meta.url)); // bench/dist/ → the checkout
const COLLECTOR_CLI = join(ROOT, 'packages/collector/dist/src/cli.js');
const REDUCER_CLI = join(ROOT, 'packages/reducer/dist/src/cli.js');
const NGINX_TEMPLATE = join(ROOT, 'bench/nginx/nginx.conf.template');
const FLOOR_HOLDER = join(ROOT, 'bench/dist/floor-holder.js');
const BPF_OBJECT = process.env.EBPF_NET_BPF_OBJECT || join(ROOT, 'bpf/.output/ebpf_net.bpf.o');
const PROFILE_DIR = process.env.EBPF_NET_BENCH_CPU_PROF ? resolve(process.env.EBPF_NET_BENCH_CPU_PROF) : undefined;
const CONNECTIONS = 32;

function fail(message: string, code = 2): never {
  console.error(`bench/${BENCH}: ${message}`);
  process.exit(code);
}

// --- options ------------------------------------------------------------------------------------
const options = { seconds: 10, rounds: 3, warmup: 3, pin: false, tcplife: true, sink: false, kernelOnly: false, floor: false, workload: 'all', udp: 'on' };
{
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--pin') options.pin = true;
    else if (a === '--sink') options.sink = true;
    else if (a === '--kernel-only') options.kernelOnly = true;
    else if (a === '--floor') options.floor = true;
    else if (a === '--no-tcplife') options.tcplife = false;
    else if (a === '--udp') {
      options.udp = args[++i] ?? '';
      if (!['on', 'off'].includes(options.udp)) fail('--udp takes on or off (the collector\'s --udp)');
    } else if (a === '--workload') {
      options.workload = args[++i] ?? '';
      if (!['all', 'keep_alive', 'new_connection'].includes(options.workload)) fail('--workload takes keep_alive, new_connection or all');
    }
    else if (a === '--seconds' || a === '--rounds' || a === '--warmup') {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v < (a === '--warmup' ? 0 : a === '--rounds' ? 2 : 1)) fail(`${a} takes a whole number${a === '--rounds' ? ' >= 2' : a === '--warmup' ? ' >= 0' : ' >= 1'}`);
      options[a.slice(2) as 'seconds' | 'rounds' | 'warmup'] = v;
    } else if (a === '--help' || a === '-h') {
      console.log('node bench/dist/collector-overhead.js [--seconds 10] [--rounds 3] [--warmup 3] [--pin] [--no-tcplife] [--sink] [--kernel-only] [--floor] [--udp on|off] [--workload all|keep_alive|new_connection]   (root; env EBPF_NET_BENCH_CPU_PROF=<dir> profiles the collector)');
      process.exit(0);
    } else fail(`unknown option ${a}; options: --seconds N --rounds N --warmup N --pin --no-tcplife --sink --kernel-only --floor --udp on|off --workload W`);
  }
}

// --- what it needs ------------------------------------------------------------------------------
if (process.getuid?.() !== 0) fail('needs root (the collector loads BPF programs); run it with sudo');
const WRK = which('wrk') ?? fail('wrk is not installed: apt-get install -y wrk');
const NGINX = which('nginx', '/usr/sbin/nginx') ?? fail('nginx is not installed: apt-get install -y nginx-light');
const BPFTOOL = which('bpftool', '/usr/sbin/bpftool') ?? fail('bpftool is not installed (needed to check no BPF program is left): apt-get install -y bpftool');
const TASKSET = options.pin ? (which('taskset') ?? fail('--pin needs taskset: apt-get install -y util-linux')) : undefined;
for (const [path, what] of [[COLLECTOR_CLI, 'the collector'], [REDUCER_CLI, 'the reducer']] as const) {
  try {
    statSync(path);
  } catch {
    fail(`${path} (${what}) does not exist; build first: npx tsc -b`);
  }
}
try {
  statSync(BPF_OBJECT);
} catch {
  fail(`${BPF_OBJECT} does not exist; build the BPF object first: bash bpf/build.sh`);
}
const TCPLIFE = options.tcplife ? which('tcplife', '/usr/sbin/tcplife') : undefined;
if (options.floor && !which('clang-16')) fail('--floor builds native/floor.bpf.c with clang-16: apt-get install -y clang-16');

// --- everything it starts, and undoing it ---------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'ebpf-net-collector-overhead-'));
const children = new Set<Child>();
/** Every BPF program id the collector or tcplife held, to check at the end that none is left. */
const heldPrograms = new Map<number, string>();
let cleaning: Promise<void> | undefined;
let interrupted = false;

function start(name: string, command: string, args: string[], env?: NodeJS.ProcessEnv): Child {
  const child = new Child(name, command, args, join(dir, `${name.replace(/\W+/g, '_')}.log`), env);
  children.add(child);
  void child.exited.then(() => children.delete(child));
  return child;
}

/** Stops, in reverse order of start, whatever is still running: each group TERM'd, then KILL'd. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of [...children].reverse()) {
      const sig: NodeJS.Signals = child.name.startsWith('tcplife') ? 'SIGINT' : child.name === 'nginx' ? 'SIGQUIT' : 'SIGTERM';
      await child.stop(sig, child.name.startsWith('collector') ? 15_000 : 5_000);
    }
  })();
  return cleaning;
}

process.on('exit', () => {
  for (const child of children) child.signal('SIGKILL'); // last resort; cleanup() normally ran
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench/${BENCH}: ${signal}: stopping everything it started`);
    interrupted = true;
    void cleanup().then(() => {
      let code = 130;
      try {
        checkNoProgramsLeft();
      } catch (error) {
        console.error(`bench/${BENCH}: FAILED: ${(error as Error).message}`);
        code = 1;
      }
      rmSync(dir, { recursive: true, force: true });
      process.exit(code);
    });
  });
}

/** Fails loudly if any BPF program the collector or tcplife held is still loaded. */
function checkNoProgramsLeft(): void {
  const left = loadedPrograms(BPFTOOL, [...heldPrograms.keys()]);
  if (left.length > 0) {
    const names = left.map((id) => `${id} (${heldPrograms.get(id)})`).join(', ');
    throw new Error(`BPF programs still loaded after their owner stopped: ${names}; see bpftool prog show id <id>, and bpftool link list`);
  }
}

// --- the parts ------------------------------------------------------------------------------------
function tcpReady(port: number): Promise<boolean> {
  return new Promise((res) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      res(true);
    });
    socket.once('error', () => res(false));
  });
}

async function waitFor(what: string, child: Child, ready: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!child.alive) throw new Error(`${what} exited (code ${child.exitCode}) before it was ready:\n${child.tail()}`);
    if (await ready()) return;
    await sleep(100);
  }
  throw new Error(`${what} was not ready after ${timeoutMs} ms:\n${child.tail()}`);
}

const pinned = (cpu: number, command: string, args: string[]): [string, string[]] => (TASKSET ? [TASKSET, ['-c', String(cpu), command, ...args]] : [command, args]);

async function startNginx(port: number): Promise<Child> {
  const ngDir = join(dir, 'nginx');
  for (const sub of ['', 'client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(ngDir, sub), { recursive: true });
  const conf = readFileSync(NGINX_TEMPLATE, 'utf8').replaceAll('{{DIR}}', ngDir).replaceAll('{{PORT}}', String(port));
  writeFileSync(join(ngDir, 'nginx.conf'), conf);
  // -e: the start-up error log, before the config's own is open (the default may be unwritable).
  const [cmd, args] = pinned(1, NGINX, ['-p', ngDir, '-c', join(ngDir, 'nginx.conf'), '-e', join(ngDir, 'error.log')]);
  const nginx = start('nginx', cmd, args);
  await waitFor('nginx', nginx, () => tcpReady(port), 10_000);
  return nginx;
}

/**
 * --sink: a process that accepts the collector's connection and throws its bytes away, in place
 * of the reducer (the collector expects nothing back). In a deployment the reducer runs elsewhere:
 * on a 2-core machine its CPU would otherwise count against nginx too.
 */
const SINK_SOURCE = `require('net').createServer((c) => { c.on('data', () => {}); c.on('error', () => {}); }).listen(Number(process.argv[1]), '127.0.0.1');`;

async function startReducer(intake: number, prom: number): Promise<Child> {
  if (options.sink) {
    const sink = start('reducer', process.execPath, ['-e', SINK_SOURCE, String(intake)]);
    await waitFor('the sink', sink, () => tcpReady(intake), 10_000);
    return sink;
  }
  const reducer = start('reducer', process.execPath, [REDUCER_CLI, '--host', '127.0.0.1', '--port', String(intake), '--prom', `127.0.0.1:${prom}`, '--no-db', '--no-log-file']);
  await waitFor('the reducer', reducer, () => tcpReady(intake), 30_000);
  return reducer;
}

async function startCollector(intake: number, runName: string): Promise<Child> {
  const nodeArgs = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR, '--cpu-prof-name', `collector-${runName}.cpuprofile`] : [];
  const collector = start(`collector-${runName}`, process.execPath, [...nodeArgs, COLLECTOR_CLI, '--no-log-file', '--udp', options.udp], {
    ...process.env,
    EBPF_NET_INTAKE_HOST: '127.0.0.1',
    EBPF_NET_INTAKE_PORT: String(intake),
    EBPF_NET_DATA_DIR: join(dir, 'collector-data'),
  });
  // Connected to the reducer means: programs attached, /proc scanned, snapshot under way.
  await waitFor('the collector', collector, () => connectedTo(collector.pid, intake), 60_000);
  for (const id of heldBpfPrograms(collector.pid)) heldPrograms.set(id, `collector ${runName}`);
  return collector;
}

/** --floor: the empty programs, attached by floor-holder.js until it is stopped. */
async function startFloor(runName: string, objectPath: string): Promise<Child> {
  const holder = start(`floor-${runName}`, process.execPath, [FLOOR_HOLDER, objectPath]);
  await waitFor('the floor holder', holder, () => readFileSync(holder.logPath, 'utf8').includes('attached'), 30_000);
  for (const id of heldBpfPrograms(holder.pid)) heldPrograms.set(id, `floor ${runName}`);
  return holder;
}

async function startTcplife(runName: string): Promise<Child> {
  const tcplife = start(`tcplife-${runName}`, TCPLIFE!, []);
  // Attached once it holds its programs and that count has settled.
  let last = -1;
  await waitFor('tcplife', tcplife, () => {
    const n = heldBpfPrograms(tcplife.pid).length;
    const settled = n > 0 && n === last;
    last = n;
    return settled;
  }, 30_000);
  for (const id of heldBpfPrograms(tcplife.pid)) heldPrograms.set(id, `tcplife ${runName}`);
  return tcplife;
}

/** Stops an agent and checks that the programs it held are gone (the kernel frees them shortly after). */
async function stopAgent(agent: Child, sig: NodeJS.Signals): Promise<void> {
  const ids = heldBpfPrograms(agent.pid);
  await agent.stop(sig, 15_000);
  if (agent.exitCode !== 0) console.error(`bench/${BENCH}: ${agent.name} exited with code ${agent.exitCode}:\n${agent.tail()}`);
  for (let i = 0; i < 50 && loadedPrograms(BPFTOOL, ids).length > 0; i++) await sleep(100);
  checkNoProgramsLeft();
}

type Config = 'without' | 'with' | 'kernel_only' | 'floor' | 'tcplife';
interface Workload {
  name: 'keep_alive' | 'new_connection';
  wrkArgs: string[];
  lossTarget: number;
}
interface Run {
  config: Config;
  round: number;
  wrk: WrkResult & { cpu: number };
  seconds: number;
  agentCpu: number | undefined;
  /** The part of agentCpu spent in the kernel (system calls: map reads, epoll, socket writes). */
  agentSys: number | undefined;
  reducerCpu: number;
  nginxCpu: number;
  /** irq + softirq time of the machine, in cores. */
  irqCores: number;
  /** Other processes holding BPF programs during the run, and their CPU in cores. */
  foreignTracers: number;
  foreignTracerCores: number;
  otherBusyCores: number;
  profileWindow?: { fromUs: number; toUs: number; file: string };
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
/** A difference of CPU times, rid of floating-point dust (they are whole clock ticks). */
const ticks = (seconds: number) => Math.round(seconds * CLOCK_TICKS) / CLOCK_TICKS;

/** One wrk run; its CPU is sampled while it runs (the last sample, a few ms short of its end). */
async function runWrk(workload: Workload, url: string, seconds: number, label: string): Promise<WrkResult & { cpu: number }> {
  const [cmd, args] = pinned(0, WRK, ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, ...workload.wrkArgs, url]);
  const wrk = start(`wrk-${label}`, cmd, args);
  let cpu = 0;
  const sampler = setInterval(() => (cpu = cpuSeconds(wrk.pid) ?? cpu), 100);
  try {
    const timer = sleep((seconds + 30) * 1000).then(() => 'timeout' as const);
    if ((await Promise.race([wrk.exited, timer])) === 'timeout') {
      await wrk.stop('SIGKILL', 1000);
      throw new Error(`wrk did not finish within ${seconds + 30} s`);
    }
  } finally {
    clearInterval(sampler);
  }
  if (wrk.exitCode !== 0) throw new Error(`wrk failed (code ${wrk.exitCode}):\n${wrk.tail()}`);
  return { ...parseWrk(readFileSync(wrk.logPath, 'utf8')), cpu };
}

async function runOnce(workload: Workload, config: Config, round: number, ctx: { url: string; intake: number; reducer: Child; nginx: Child; floorObject?: string }): Promise<Run> {
  const runName = `${workload.name}-${config}-${round}`;
  let agent: Child | undefined;
  try {
    if (config === 'with' || config === 'kernel_only') agent = await startCollector(ctx.intake, runName);
    if (config === 'tcplife') agent = await startTcplife(runName);
    if (config === 'floor') agent = await startFloor(runName, ctx.floorObject!);
    if (agent) await sleep(1000); // start-up work (snapshot, first map reads) is not the run's
    if (config === 'kernel_only') process.kill(agent!.pid, 'SIGSTOP');
    const agent0 = agent ? cpuTimes(agent.pid) : undefined;
    const reducer0 = cpuSeconds(ctx.reducer.pid) ?? 0;
    const nginx0 = groupCpuSeconds(ctx.nginx.pid);
    // Other tracers (another collector, say) see this traffic too: their CPU is reported apart.
    const foreign = bpfHolders(new Set(agent ? [agent.pid, process.pid] : [process.pid]));
    const foreign0 = foreign.map((pid) => cpuSeconds(pid));
    const m0 = machineCpu();
    const t0 = nowUs();
    const wrk = await runWrk(workload, ctx.url, options.seconds, runName);
    const t1 = nowUs();
    if (config === 'kernel_only') process.kill(agent!.pid, 'SIGCONT');
    if (agent && !agent.alive) throw new Error(`${agent.name} exited during the run (code ${agent.exitCode}):\n${agent.tail()}`);
    const m1 = machineCpu();
    const agent1 = agent ? cpuTimes(agent.pid) : undefined;
    const reducer1 = cpuSeconds(ctx.reducer.pid) ?? 0;
    const nginx1 = groupCpuSeconds(ctx.nginx.pid);
    const foreignCpu = foreign.reduce((sum, pid, i) => sum + Math.max(0, (cpuSeconds(pid) ?? foreign0[i] ?? 0) - (foreign0[i] ?? 0)), 0);
    const seconds = (t1 - t0) / 1e6;
    const agentCpu = agent0 && agent1 ? ticks(agent1.user + agent1.sys - agent0.user - agent0.sys) : undefined;
    const agentSys = agent0 && agent1 ? ticks(agent1.sys - agent0.sys) : undefined;
    // The machine's busy time charged to none of the bench's processes, nor to interrupts, nor to
    // other tracers: other work on the machine. It flags a contaminated run.
    const busy = m1.busy - m0.busy;
    const irq = m1.irq - m0.irq;
    const ours = (agentCpu ?? 0) + (reducer1 - reducer0) + (nginx1 - nginx0) + wrk.cpu;
    const run: Run = {
      config, round, wrk, seconds, agentCpu, agentSys, reducerCpu: ticks(reducer1 - reducer0), nginxCpu: ticks(nginx1 - nginx0),
      irqCores: irq / seconds,
      foreignTracers: foreign.length,
      foreignTracerCores: foreignCpu / seconds,
      otherBusyCores: (busy - ours - irq - foreignCpu) / seconds,
    };
    if (config === 'with' && PROFILE_DIR) run.profileWindow = { fromUs: t0, toUs: t1, file: join(PROFILE_DIR, `collector-${runName}.cpuprofile`) };
    return run;
  } finally {
    if (agent && config === 'kernel_only' && agent.alive) process.kill(agent.pid, 'SIGCONT');
    if (agent) await stopAgent(agent, config === 'tcplife' ? 'SIGINT' : 'SIGTERM');
    if (agent && config === 'tcplife') {
      const lines = readFileSync(agent.logPath, 'utf8').split('\n').length - 2;
      if (lines <= 0) console.error(`bench/${BENCH}: tcplife printed no connection during ${runName}:\n${agent.tail()}`);
    }
  }
}

const pct = (x: number) => x * 100;

function summarize(workload: Workload, runs: Run[]): void {
  const of = (c: Config) => runs.filter((r) => r.config === c);
  const without = of('without');
  const rpsWithout = median(without.map((r) => r.wrk.rps));
  const perRound = (c: Config) => of(c).map((r) => r.wrk.rps / without.find((w) => w.round === r.round)!.wrk.rps);
  // CPU of the workload itself (nginx, wrk, interrupts) per request: where the BPF programs' own
  // cost lands (they run in those contexts), plus the contention of one more busy process. Less
  // sensitive than requests/s to other work on the machine.
  const workloadCpu = (r: Run) => (r.nginxCpu + r.wrk.cpu + r.irqCores * r.seconds) / r.wrk.requests;
  const cpuPerRequestRatio = (c: Config) => median(of(c).map((r) => workloadCpu(r) / workloadCpu(without.find((w) => w.round === r.round)!)));
  const newConn = workload.name === 'new_connection';

  const figures = (c: 'with' | 'kernel_only' | 'floor' | 'tcplife', who: 'collector' | 'tcplife') => {
    const rs = of(c);
    const rps = median(rs.map((r) => r.wrk.rps));
    const ratio = rps / rpsWithout;
    const cpuPercent = median(rs.map((r) => pct(r.agentCpu! / r.seconds)));
    const out: Record<string, unknown> = {
      rps_without: rpsWithout,
      rps_with: rps,
      ratio,
      ratio_per_round_median: median(perRound(c)),
      loss_percent: pct(1 - ratio),
      workload_cpu_per_request_ratio: cpuPerRequestRatio(c),
      [`${who}_cpu_percent_of_core`]: cpuPercent,
      [`${who}_sys_share_of_cpu`]: median(rs.map((r) => (r.agentCpu! > 0 ? r.agentSys! / r.agentCpu! : 0))),
    };
    if (newConn) {
      const per10k = median(rs.map((r) => r.agentCpu! / (r.wrk.requests / 1e4)));
      out[`${who}_cpu_seconds_per_10k_connections`] = per10k;
      out[`${who}_cpu_percent_of_core_at_10k_connections_per_s`] = pct(per10k);
    } else {
      out[`${who}_cpu_seconds_per_1m_requests`] = median(rs.map((r) => r.agentCpu! / (r.wrk.requests / 1e6)));
    }
    return out;
  };

  const mine = figures('with', 'collector');
  const loss = mine.loss_percent as number;
  const cpuAt10k = mine.collector_cpu_percent_of_core_at_10k_connections_per_s as number | undefined;
  emit({
    bench: BENCH,
    case: workload.name,
    rounds: options.rounds,
    seconds: options.seconds,
    ...mine,
    reducer_cpu_percent_of_core: median(of('with').map((r) => pct(r.reducerCpu / r.seconds))),
    other_busy_cores_median: median(runs.map((r) => r.otherBusyCores)),
    other_tracers_cores_median: median(runs.map((r) => r.foreignTracerCores)),
    target: newConn ? `loss <= ${workload.lossTarget}%; collector <= 10% of one core at 10k connections/s` : `loss <= ${workload.lossTarget}%`,
    loss_target_met: loss <= workload.lossTarget,
    ...(newConn ? { cpu_target_met: cpuAt10k! <= 10 } : {}),
  });
  const emitBeside = (suffix: string, fields: Record<string, unknown>) => emit({ bench: BENCH, case: `${workload.name}_${suffix}`, rounds: options.rounds, seconds: options.seconds, ...fields });
  // Runs without an agent doing user-space work: only the throughput figures say anything.
  const throughputBeside = (c: 'kernel_only' | 'floor', note: string) => {
    if (of(c).length === 0) return;
    const { rps_without, rps_with, ratio, ratio_per_round_median, loss_percent, workload_cpu_per_request_ratio } = figures(c, 'collector');
    emitBeside(c, {
      rps_without, rps_with, ratio, ratio_per_round_median, loss_percent, workload_cpu_per_request_ratio,
      share_of_collector_loss: loss > 0 ? (loss_percent as number) / loss : undefined,
      note,
    });
  };
  throughputBeside('kernel_only', 'the collector stopped (SIGSTOP) during the run: its BPF programs alone; a full ring drops what they would have written');
  throughputBeside('floor', 'programs on the collector\'s socket hooks that do nothing (native/floor.bpf.c): what any program there costs before its work');
  if (of('tcplife').length > 0) {
    const theirs = figures('tcplife', 'tcplife');
    emitBeside('tcplife', {
      ...theirs,
      collector_loss_over_tcplife_loss: (theirs.loss_percent as number) > 0 ? loss / (theirs.loss_percent as number) : undefined,
      reference: newConn ? 'issue: tcplife costs about 26% of throughput here on 2 cores' : undefined,
    });
  }
  if (PROFILE_DIR) {
    const files = of('with').flatMap((r) => (r.profileWindow ? [{ path: r.profileWindow.file, fromUs: r.profileWindow.fromUs, toUs: r.profileWindow.toUs }] : []));
    try {
      let summary = summarizeProfiles(files);
      let window = 'wrk';
      if (summary.sampledSeconds === 0) {
        summary = summarizeProfiles(files.map((f) => ({ path: f.path })));
        window = 'whole process (the wrk window matched no sample)';
      }
      emit({ bench: BENCH, case: `${workload.name}_profile`, window, profiles: files.length, sampled_cpu_seconds: summary.sampledSeconds, top_functions_self: summary.topFunctions, top_files_self: summary.topFiles, note: 'profiled runs are slower: use their figures for where the time goes, not for the targets' });
    } catch (error) {
      console.error(`bench/${BENCH}: cannot read the CPU profiles in ${PROFILE_DIR}: ${(error as Error).message}`);
    }
  }
}

/** The reducer's /metrics as name{labels} → value (the last interval's export). */
async function scrape(prom: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const text = await (await fetch(`http://127.0.0.1:${prom}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith('ebpf_net_')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function otherTracepointPrograms(): string[] {
  try {
    const progs = JSON.parse(execFileSync(BPFTOOL, ['prog', 'list', '-j'], { encoding: 'utf8' })) as Array<{ id: number; type: string; name?: string }>;
    return progs.filter((p) => p.type === 'tracepoint' || p.type === 'raw_tracepoint' || p.type === 'sock_ops').map((p) => `${p.name ?? '?'}#${p.id}`);
  } catch {
    return [];
  }
}

/** The first line a tool prints about its version (nginx -v writes to stderr; wrk -v exits 1). */
function version(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0]!.trim();
}

// --- the run --------------------------------------------------------------------------------------
async function main(): Promise<void> {
  const [nginxPort, intake, prom] = [await freePort(), await freePort(), await freePort()];
  const nginx = await startNginx(nginxPort);
  const reducer = await startReducer(intake, prom);
  const url = `http://127.0.0.1:${nginxPort}/`;
  const floorObject = options.floor ? buildFloorObject(dir) : undefined;
  const ctx = { url, intake, reducer, nginx, floorObject };

  // Is tcplife usable here? It is tracepoint-based (sock:inet_sock_set_state) in libbpf-tools,
  // but an older or kprobe-built one fails to attach: then the comparison is skipped, and said so.
  let tcplifeStatus = TCPLIFE ? 'works' : options.tcplife ? 'absent: apt-get install -y libbpf-tools for the comparison' : 'skipped (--no-tcplife)';
  if (TCPLIFE) {
    try {
      const probe = await startTcplife('probe');
      await stopAgent(probe, 'SIGINT');
    } catch (error) {
      tcplifeStatus = `fails on this kernel: ${(error as Error).message.split('\n').slice(0, 3).join(' / ')}`;
    }
  }
  const configs: Config[] = ['without', 'with'];
  if (options.kernelOnly) configs.push('kernel_only');
  if (options.floor) configs.push('floor');
  if (tcplifeStatus === 'works') configs.push('tcplife');
  emit({
    bench: BENCH,
    case: 'setup',
    seconds: options.seconds,
    rounds: options.rounds,
    warmup_seconds: options.warmup,
    connections: CONNECTIONS,
    order: configs.join(','),
    pinning: options.pin ? 'wrk on CPU 0, nginx on CPU 1 (taskset); collector, reducer, tcplife unpinned' : 'none',
    nginx: version(NGINX, ['-v']),
    wrk: version(WRK, ['-v']),
    tcplife: tcplifeStatus,
    reducer: options.sink ? 'none: a discard sink takes the stream (--sink); reducer_cpu is the sink\'s' : 'same machine, default 10s interval, --no-db',
    load_average_1m: loadavg()[0],
    other_bpf_tracepoint_programs: otherTracepointPrograms(),
    collector_udp: options.udp,
    profiling: PROFILE_DIR ? `collector under node --cpu-prof, profiles in ${PROFILE_DIR}` : 'off',
  });

  const others = otherTracepointPrograms().length;
  if (others > 0 || loadavg()[0] > 1) {
    console.error(`bench/${BENCH}: warning: ${others} other BPF tracepoint/sock_ops programs are loaded and the 1-minute load average is ${loadavg()[0].toFixed(2)}: other work on this machine makes the figures noisier (see other_busy_cores)`);
  }
  const workloads = ([
    { name: 'keep_alive', wrkArgs: [], lossTarget: 2 },
    { name: 'new_connection', wrkArgs: ['-H', 'Connection: close'], lossTarget: 5 },
  ] satisfies Workload[]).filter((w) => options.workload === 'all' || w.name === options.workload);
  for (const workload of workloads) {
    if (options.warmup > 0) await runWrk(workload, url, options.warmup, `${workload.name}-warmup`);
    const runs: Run[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      for (const config of configs) {
        const run = await runOnce(workload, config, round, ctx);
        runs.push(run);
        emit({
          bench: BENCH,
          case: `${workload.name}_run`,
          config,
          round,
          rps: run.wrk.rps,
          requests: run.wrk.requests,
          errors: run.wrk.socketErrors + run.wrk.non2xx,
          latency_avg_ms: run.wrk.latencyAvgMs,
          agent_cpu_percent_of_core: run.agentCpu === undefined ? undefined : pct(run.agentCpu / run.seconds),
          agent_sys_percent_of_core: run.agentSys === undefined ? undefined : pct(run.agentSys / run.seconds),
          reducer_cpu_percent_of_core: pct(run.reducerCpu / run.seconds),
          nginx_cpu_percent_of_core: pct(run.nginxCpu / run.seconds),
          wrk_cpu_percent_of_core: pct(run.wrk.cpu / run.seconds),
          irq_cores: run.irqCores,
          other_tracers: run.foreignTracers,
          other_tracers_cores: run.foreignTracerCores,
          other_busy_cores: run.otherBusyCores,
        });
      }
    }
    summarize(workload, runs);
  }

  // The reducer exports every 10 s: wait for the export that follows the last collector's goodbye.
  if (options.sink) return;
  await sleep(11_000);
  try {
    const m = await scrape(prom);
    const lost: Record<string, number> = {};
    for (const [k, v] of m) {
      const cause = /^ebpf_net_collector_lost_events(?:_total)?\{.*cause="([^"]+)"/.exec(k);
      if (cause) lost[cause[1]!] = (lost[cause[1]!] ?? 0) + v;
    }
    const find = (prefix: string) => [...m].find(([k]) => k === prefix || k.startsWith(`${prefix}{`) || k === `${prefix}_total` || k.startsWith(`${prefix}_total{`))?.[1];
    emit({
      bench: BENCH,
      case: 'collector_health',
      reducer_messages_total: find('ebpf_net_reducer_messages'),
      reducer_received_bytes_total: find('ebpf_net_reducer_received_bytes'),
      collector_lost_events_by_cause: lost,
      note: options.kernelOnly
        ? 'over all "with" and "kernel_only" runs together (the collectors share one node identity); a stopped collector\'s full ring counts as lost events'
        : 'over all "with" runs together (the collectors share one node identity)',
    });
  } catch (error) {
    console.error(`bench/${BENCH}: cannot read the reducer's /metrics: ${(error as Error).message}`);
  }
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  // Interrupted: what failed is what the signal handler stopped; it reports and exits.
  if (!interrupted) console.error(`bench/${BENCH}: ${(error as Error).message}`);
} finally {
  // Interrupted: the signal handler stops everything, checks and exits.
  if (!interrupted) {
    await cleanup();
    try {
      checkNoProgramsLeft();
    } catch (error) {
      console.error(`bench/${BENCH}: FAILED: ${(error as Error).message}`);
      process.exitCode = 1;
    }
    if (failed) {
      console.error(`bench/${BENCH}: logs kept in ${dir}`);
      process.exitCode = 1;
    } else if (process.exitCode !== 1) {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
