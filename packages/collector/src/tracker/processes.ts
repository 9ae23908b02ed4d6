// The collector's table of processes and containers: from the startup scan, then from exec,
// fork and exit events. A process's container is resolved once per cgroup and announced before
// the first process in it.

import { EntityFlags, type MessageInput } from '@ebpf-net/protocol';
import { EventType } from '../kernel/abi.js';
import type { ProcessEvent } from '../kernel/events.js';
import type { Outbox } from './sockets.js';

export interface ProcessEntry {
  pid: number;
  ppid: number;
  comm: string;
  cmdline: string;
  cgroupId: number;
  startTimeNs: number;
}

export type ContainerInput = Omit<MessageInput<'containerInfo'>, 'cgroupId'>;

/** Finds the container of a process (reading its cgroups and the runtime's metadata). */
export type ContainerResolver = (pid: number) => ContainerInput | undefined;

export interface ProcessTrackerLimits {
  maxProcesses: number;
  maxContainers: number;
}

export class ProcessTracker {
  private readonly processes = new Map<number, ProcessEntry>();
  private readonly containers = new Map<number, MessageInput<'containerInfo'>>();
  /** Processes or containers not tracked because a table was full. */
  dropped = 0;

  constructor(
    private readonly out: Outbox,
    private readonly resolveContainer: ContainerResolver,
    private readonly limits: ProcessTrackerLimits,
  ) {}

  get size(): number {
    return this.processes.size;
  }

  comm(pid: number): string | undefined {
    return this.processes.get(pid)?.comm;
  }

  /** Takes the processes the startup scan found; they are announced as pre-existing. */
  addExisting(entries: readonly ProcessEntry[]): void {
    for (const p of entries) this.upsert(p, EntityFlags.PREEXISTING);
  }

  onEvent(e: ProcessEvent): void {
    switch (e.type) {
      case EventType.PROC_EXEC: {
        const cmdline = e.filename; // the path exec'd; the scan has full command lines
        this.upsert({ pid: e.pid, ppid: e.ppid, comm: e.comm, cmdline, cgroupId: e.cgroupId, startTimeNs: e.startNs }, 0);
        return;
      }
      case EventType.PROC_FORK: {
        const parent = this.processes.get(e.ppid);
        this.upsert({ pid: e.pid, ppid: e.ppid, comm: e.comm, cmdline: parent?.cmdline ?? '', cgroupId: e.cgroupId, startTimeNs: e.startNs }, 0);
        return;
      }
      case EventType.PROC_EXIT:
        if (this.processes.delete(e.pid)) this.out.send('processExit', { pid: e.pid, exitCode: e.exitCode, timestampNs: e.tsNs });
        return;
      default:
        return;
    }
  }

  /** After a (re)connect: every container, then every process, flagged as snapshot. */
  snapshot(): void {
    for (const c of this.containers.values()) this.out.send('containerInfo', c);
    for (const p of this.processes.values()) this.sendStart(p, EntityFlags.SNAPSHOT);
  }

  private upsert(p: ProcessEntry, flags: number): void {
    if (!this.processes.has(p.pid) && this.processes.size >= this.limits.maxProcesses) {
      this.dropped++;
      return;
    }
    this.processes.set(p.pid, p);
    this.ensureContainer(p);
    this.sendStart(p, flags);
  }

  private ensureContainer(p: ProcessEntry): void {
    if (this.containers.has(p.cgroupId)) return;
    if (this.containers.size >= this.limits.maxContainers) {
      this.dropped++;
      return;
    }
    const found = this.resolveContainer(p.pid);
    if (!found) return;
    const info = { cgroupId: p.cgroupId, ...found };
    this.containers.set(p.cgroupId, info);
    this.out.send('containerInfo', info);
  }

  private sendStart(p: ProcessEntry, flags: number): void {
    this.out.send('processStart', { pid: p.pid, ppid: p.ppid, cgroupId: p.cgroupId, startTimeNs: p.startTimeNs, flags, comm: p.comm, cmdline: p.cmdline });
  }
}
