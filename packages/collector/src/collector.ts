// The kernel-collector: loads the BPF programs, takes stock of what already exists, then streams
// processes, containers, sockets and their counter deltas to the reducer.
//
// Start-up order gives no gap and no duplicate: the programs are attached first with the ring
// buffer held (events wait in it), then /proc is scanned, then the ring is drained. A socket
// opened during the scan is in both; the socket tracker matches it by 4-tuple.

import { randomInt } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { hostname, release, uptime } from 'node:os';
import { join } from 'node:path';
import { type Logger, UserError } from '@ebpf-net/common';
import { LossCause, type MessageInput, PROTOCOL_VERSION } from '@ebpf-net/protocol';
import type { CollectorConfig } from './config.js';
import { type HostPaths, containerOfProcess, readContainerMetadata, readProcess, resolveHostPaths, scanProcesses, scanSockets } from './host/index.js';
import { IntakeClient } from './intake/client.js';
import { KernelProbes } from './kernel/probes.js';
import type { KernelEvent } from './kernel/events.js';
import { KernelLossCause } from './kernel/abi.js';
import { type ContainerInput, ProcessTracker } from './tracker/processes.js';
import { saveConnections, savedConnectionsPath, takeSavedConnections } from './tracker/saved-connections.js';
import { type ExistingSocket, SocketTracker } from './tracker/sockets.js';

export const COLLECTOR_VERSION = '0.1.0';

/** TCP states (as in /proc/net/tcp) of connections the scan reports; the kernel's events cover the rest. */
const SCANNED_TCP_STATES = new Set([1, 4, 5, 8, 9, 11]); // ESTABLISHED, FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING
const STATS_MESSAGE_INTERVAL_MS = 10_000;
const LOG_INTERVAL_MS = 60_000;

export class Collector {
  readonly sessionId = randomInt(2 ** 47);
  readonly client: IntakeClient;
  readonly sockets: SocketTracker;
  readonly processes: ProcessTracker;
  private probes: KernelProbes | undefined;
  private readonly paths: HostPaths;
  private readonly startedMs = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];
  /** Loss totals already reported, by LossCause. */
  private readonly lossSent = new Map<number, number>();
  private lastLog = { ms: Date.now(), events: 0 };

  constructor(
    private readonly config: CollectorConfig,
    private readonly log: Logger,
  ) {
    this.paths = resolveHostPaths(config.hostDir);
    this.client = new IntakeClient({
      host: config.intakeHost,
      port: config.intakePort,
      handshake: () => this.handshake(),
      onConnect: () => this.sendSnapshot(),
      log,
      maxQueueBytes: config.bufferBytes,
    });
    this.sockets = new SocketTracker(this.client, { maxSockets: config.maxSockets });
    this.processes = new ProcessTracker(this.client, (pid) => this.resolveContainer(pid), {
      maxProcesses: 1_000_000,
      maxContainers: 100_000,
    });
  }

  async start(): Promise<void> {
    const netns = this.config.netns.map((n) => this.netnsInode(n));
    this.probes = await KernelProbes.open({
      logger: this.log,
      onEvent: (e) => this.onEvent(e),
      ringBytes: this.config.ringBytes,
      socketEntries: this.config.maxSockets,
      udpRemoteEntries: this.config.maxSockets,
      netns,
      udp: this.config.udp,
      hooks: this.config.hooks,
      drainIntervalMs: 0,
    });
    for (const r of this.probes.attachResults) {
      if (r.status !== 'attached') this.log.warn({ program: r.name, section: r.section, status: r.status, reason: r.reason }, `BPF program ${r.name} not attached: ${r.reason}`);
    }
    this.log.info({ attached: this.probes.attachedProbes, hooks: this.probes.hooks, netns: netns.length > 0 ? netns : 'all' }, 'BPF programs attached');
    if (!this.config.udp) this.log.info('UDP is off (--udp off): no program runs on a send or receive; accepted TCP connections are owned by the listening process');
    else if (!this.probes.perCallHooks) this.log.warn('the send/recv tracepoints are missing (Linux < 6.3): UDP is not watched, and accepted TCP connections are owned by the listening process');

    const started = Date.now();
    const processes = scanProcesses(this.paths);
    this.processes.addExisting(processes.map((p) => ({ pid: p.pid, ppid: p.ppid, comm: p.comm, cmdline: p.cmdline, cgroupId: p.cgroupId, startTimeNs: p.startTimeNs })));
    const allowed = new Set(netns);
    const scanned = scanSockets(this.paths, processes).filter((s) => (allowed.size === 0 || allowed.has(s.netns)) && (s.protocol === 17 || SCANNED_TCP_STATES.has(s.state)));
    const existing: ExistingSocket[] = scanned.map((s) => ({ protocol: s.protocol, family: s.family, localAddr: s.localAddr, localPort: s.localPort, remoteAddr: s.remoteAddr, remotePort: s.remotePort, netns: s.netns, pid: s.pid, role: s.role }));
    this.sockets.addExisting(existing);
    this.log.info({ processes: processes.length, sockets: existing.length, ms: Date.now() - started }, 'took stock of existing processes and sockets');
    this.restoreSavedConnections();
    // The kernel counts a TCP connection it has an entry for: give it one for each found here.
    const adoption = await this.probes.adoptTcp(scanned.filter((s) => s.protocol === 6 && s.pid > 0 && s.fd >= 0));
    const notAdopted = Object.values(adoption.failed).reduce((a, b) => a + b, 0);
    const adoptionLog = { adopted: adoption.adopted, failed: adoption.failed };
    if (notAdopted > 0) this.log.warn(adoptionLog, `${notAdopted} pre-existing TCP connections could not be reached (closed meanwhile, or owned outside this PID namespace): they are reported, without counters, until they close`);
    else this.log.info(adoptionLog, 'pre-existing TCP connections adopted');

    this.probes.startDraining(10);
    this.client.start();
    this.every(this.config.intervalMs, () => this.poll());
    this.every(STATS_MESSAGE_INTERVAL_MS, () => this.sendSelfStats());
    this.every(LOG_INTERVAL_MS, () => this.logSelfStats());
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.poll(); // the last events and deltas (the poll drains the ring first)
    const delivered = await this.client.stop();
    this.probes?.close();
    this.probes = undefined;
    this.saveConnections(delivered);
  }

  /** The counters a collector that stopped before this one reported (saved-connections.ts). */
  private restoreSavedConnections(): void {
    const bootId = this.bootId();
    if (!bootId) return;
    const taken = takeSavedConnections(this.config.dataDir, bootId);
    if (taken.ignored) this.log.warn({ dataDir: this.config.dataDir }, `not continuing from the last run's counters: ${taken.ignored}`);
    if (taken.connections.length === 0) return;
    this.sockets.restoreFrom(taken.connections);
    this.log.info({ connections: taken.connections.length }, 'continuing the counters of the connections the last run left open');
  }

  /**
   * At a stop whose reports the reducer acknowledged, the counters of the connections still open,
   * for the next start: what moves until then is reported by it. Unacknowledged reports may be
   * lost, so then nothing is saved, and the next start counts from its own adoption.
   */
  private saveConnections(delivered: boolean): void {
    const path = savedConnectionsPath(this.config.dataDir);
    if (!delivered) {
      this.log.info('the reducer did not acknowledge the last reports: the open connections\' counters are not saved for the next start');
      return;
    }
    const bootId = this.bootId();
    if (!bootId) return; // no way to tell a restart from a reboot
    const live = this.sockets.liveTcpConnections();
    try {
      saveConnections(this.config.dataDir, bootId, live);
      this.log.info({ connections: live.length, path }, 'saved the counters of the open connections for the next start');
    } catch (error) {
      this.log.warn({ path }, `cannot save the open connections' counters for the next start: ${(error as Error).message}`);
    }
  }

  /** This boot of the host (sockets do not survive a reboot); '' when unknown. */
  private bootId(): string {
    try {
      return readFileSync(join(this.paths.proc, 'sys/kernel/random/boot_id'), 'utf8').trim();
    } catch {
      return '';
    }
  }

  private every(ms: number, fn: () => void): void {
    this.timers.push(setInterval(fn, ms));
  }

  private onEvent(e: KernelEvent): void {
    if (e.kind === 'socket') this.sockets.onEvent(e);
    else this.processes.onEvent(e);
  }

  /** Each interval: counter deltas, and losses, while connected. */
  private poll(): void {
    if (!this.probes || !this.client.connected) return;
    this.sockets.poll(this.probes);
    this.sendLosses();
    this.client.flush();
  }

  private handshake(): MessageInput<'handshake'> {
    return {
      magic: 0x544e4245,
      protocolVersion: PROTOCOL_VERSION,
      bootTimeMs: Math.round(Date.now() - uptime() * 1000),
      sessionId: this.sessionId,
      collectorVersion: COLLECTOR_VERSION,
      nodeId: this.nodeId(),
      hostname: this.hostName(),
      kernelRelease: release(),
      probes: this.probes?.attachedProbes ?? [],
    };
  }

  private sendSnapshot(): void {
    this.client.send('snapshotBegin', { timestampMs: Date.now() });
    this.processes.snapshot();
    this.sockets.snapshot();
    this.client.send('snapshotEnd', { timestampMs: Date.now() });
    this.sockets.sendPendingCloses();
    this.sendLosses();
  }

  /** Losses since the last report, by cause: in the kernel, in the send path, in the tables. */
  private sendLosses(): void {
    const totals = new Map<number, number>();
    const drops = this.probes?.readDrops() ?? [];
    totals.set(LossCause.RING_BUFFER_FULL, drops[KernelLossCause.RINGBUF_FULL] ?? 0);
    totals.set(LossCause.SOCKET_MAP_FULL, drops[KernelLossCause.SOCKET_MAP] ?? 0);
    totals.set(LossCause.PROCESS_MAP_FULL, drops[KernelLossCause.PROCESS_MAP] ?? 0);
    totals.set(LossCause.SEND_BUFFER_FULL, this.client.stats.messagesDropped);
    totals.set(LossCause.CONNECTION_LOST, this.client.stats.messagesUnacknowledged);
    totals.set(LossCause.COLLECTOR_TABLE_FULL, this.sockets.dropped + this.processes.dropped);
    totals.set(LossCause.UNKNOWN_UDP_SOCKET, this.sockets.unknownUdpSockets);
    for (const [cause, total] of totals) {
      const count = total - (this.lossSent.get(cause) ?? 0);
      if (count <= 0) continue;
      this.client.send('lostEvents', { cause, count });
      this.lossSent.set(cause, total);
    }
  }

  private selfStats(): MessageInput<'collectorStats'> {
    const cpu = process.cpuUsage();
    return {
      uptimeMs: Date.now() - this.startedMs,
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      rssBytes: process.memoryUsage.rss(),
      eventsReceived: this.probes?.stats.events ?? 0,
      messagesSent: this.client.stats.messagesSent,
      bytesSent: this.client.stats.bytesSent,
      queueBytes: this.client.queueBytes,
    };
  }

  private sendSelfStats(): void {
    this.client.send('collectorStats', this.selfStats());
  }

  private logSelfStats(): void {
    const s = this.selfStats();
    const now = Date.now();
    const eventsPerSecond = ((s.eventsReceived - this.lastLog.events) * 1000) / (now - this.lastLog.ms);
    this.lastLog = { ms: now, events: s.eventsReceived };
    this.log.info(
      {
        cpuSeconds: (s.cpuUserUs + s.cpuSystemUs) / 1e6,
        rssMiB: Math.round(s.rssBytes / 1048576),
        eventsPerSecond: Math.round(eventsPerSecond),
        messagesSent: s.messagesSent,
        bytesSent: s.bytesSent,
        queueBytes: s.queueBytes,
        dropped: {
          sendQueue: this.client.stats.messagesDropped,
          unacknowledged: this.client.stats.messagesUnacknowledged,
          tables: this.sockets.dropped + this.processes.dropped,
          unknownUdpSockets: this.sockets.unknownUdpSockets,
          kernel: this.probes?.readDrops(),
        },
        sockets: this.sockets.size,
        processes: this.processes.size,
        connected: this.client.connected,
      },
      'collector health',
    );
  }

  /** A process's container, from its cgroups (v2, or v1 on hybrid hosts) and the runtime's files. */
  private resolveContainer(pid: number): ContainerInput | undefined {
    const p = readProcess(this.paths, pid);
    if (!p) return undefined;
    const container = containerOfProcess(p);
    if (!container) return undefined;
    const meta = readContainerMetadata(this.paths, container.runtime, container.id);
    // Host processes: the id is their systemd unit, or "host"; it is their name too.
    return { runtime: container.runtime, containerId: container.id, cgroupPath: p.cgroupPath, ...meta, name: meta.name || container.id };
  }

  /** --node-name, else the machine id (stable across reboots), else the host name. */
  private nodeId(): string {
    if (this.config.nodeName) return this.config.nodeName;
    try {
      return readFileSync(join(this.paths.etc, 'machine-id'), 'utf8').trim() || this.hostName();
    } catch {
      return this.hostName();
    }
  }

  private hostName(): string {
    if (this.config.nodeName) return this.config.nodeName;
    try {
      return readFileSync(join(this.paths.etc, 'hostname'), 'utf8').trim() || hostname();
    } catch {
      return hostname();
    }
  }

  /** A namespace given by name (under /run/netns) or by inode number. */
  private netnsInode(name: string): number {
    if (/^\d+$/.test(name)) return Number(name);
    const path = join(this.paths.root, '/run/netns', name);
    try {
      return statSync(path).ino;
    } catch {
      throw new UserError(`--netns: no network namespace named ${JSON.stringify(name)} (looked for ${path})`, 2);
    }
  }
}
