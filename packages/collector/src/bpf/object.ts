// A BPF object file through its life: open → configure (knobs, map sizes, autoload) → load →
// attach → read → close.
//
// Open, load and attach are async: they run on a new thread so that libbpf's messages can be
// formatted and logged (libbpf-log.ts). Everything else is synchronous and cheap.

import { closeSync, constants, existsSync, openSync } from 'node:fs';
import type { Logger } from 'pino';
import { attachProgram, ProgramType, strerror, type AttachResult } from './attach.js';
import { sectionVariables, type VariableLayout } from './btf.js';
import { EPERM } from './errno.js';
import { BpfAttachError, BpfCallError, BpfConfigError, BpfLoadError, BpfNotPermittedError, BtfMissingError } from './errors.js';
import { encodeKnob, type KnobValue } from './knobs.js';
import * as lib from './libbpf.js';
import type { Ptr } from './libbpf.js';
import { withLibbpfLog } from './libbpf-log.js';
import { defaultLogger } from './logger.js';
import { BpfMap, type MapOwner, type ObjectState } from './map.js';
import { MappedArray } from './mapped-array.js';
import { externalBuffer } from './memory.js';
import { cgroup2Root } from './mounts.js';
import { track, untrack } from './registry.js';
import { RingBuffer, type RingBufferOptions, type SampleHandler } from './ring-buffer.js';

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

export interface BpfObjectOptions {
  /** Receives libbpf's messages and attach outcomes (default: warnings as JSON on stderr). */
  logger?: Logger;
  /** Bytes of verifier log kept per program (default 1 MiB); the kernel keeps the tail. */
  verifierLogSize?: number;
  /**
   * 0 (default): the verifier logs only when a program is rejected (libbpf retries it at level 1),
   * so successful loads cost nothing. 1 or 2: always, readable with verifierLog() after load.
   */
  verifierLogLevel?: 0 | 1 | 2;
  /** Kernel BTF that CO-RE needs; checked at open. '' skips the check. */
  btfPath?: string;
}

export interface AttachOptions {
  /** cgroup v2 directory for cgroup programs (default: the root of the cgroup v2 mount). */
  cgroupPath?: string;
  /** Programs that must attach: a BpfAttachError after all attempts when one did not. */
  required?: readonly string[];
  /** Attach only these (loaded) programs; default: every loaded program. */
  only?: readonly string[];
  /** Loaded programs not to attach now (attach({ only }) later, or never). */
  skip?: readonly string[];
}

export interface ProgramInfo {
  name: string;
  section: string;
  /** enum bpf_prog_type. */
  type: number;
  pointer: Ptr;
}

const DEFAULT_LOG_SIZE = 1024 * 1024;

export class BpfObject implements MapOwner {
  private currentState: ObjectState = 'opened';
  private readonly logger: Logger;
  private readonly mapsByName = new Map<string, BpfMap>();
  private readonly programsByName = new Map<string, ProgramInfo>();
  private readonly knobLayout = new Map<string, VariableLayout>();
  /** libbpf's writable copy of .rodata; only until load (then it is remapped read-only). */
  private rodata: Buffer | undefined;
  private readonly links = new Map<string, Ptr>();
  private readonly rings = new Set<RingBuffer>();
  private readonly mappedArrays = new Set<MappedArray>();
  private readonly verifierLogs = new Map<string, string>();
  private cgroupFd = -1;

  /** Opens an object file (bpf_object__open_file). Nothing reaches the kernel before load(). */
  static async open(path: string, options: BpfObjectOptions = {}): Promise<BpfObject> {
    const btf = options.btfPath ?? VMLINUX_BTF;
    if (btf !== '' && !existsSync(btf)) throw new BtfMissingError(btf);
    if (!existsSync(path)) throw new BpfConfigError(`BPF object ${path} does not exist`, 2);
    const logger = options.logger ?? defaultLogger();
    const messages: string[] = [];
    const r = await withLibbpfLog(logger, () => lib.bpf_object__open_file(path, 0), messages);
    if (!r.value) {
      if (r.errno === EPERM) throw new BpfNotPermittedError(`opening ${path}`, r.errno);
      throw new BpfCallError(`bpf_object__open_file(${path})`, r.errno, messages.at(-1) ?? strerror(r.errno));
    }
    try {
      return new BpfObject(path, r.value, logger, options);
    } catch (error) {
      lib.bpf_object__close(r.value);
      throw error;
    }
  }

  private constructor(
    readonly path: string,
    /** struct bpf_object *. */
    private readonly pointer: Ptr,
    logger: Logger,
    private readonly options: BpfObjectOptions,
  ) {
    this.logger = logger.child({ object: path });
    for (let p = lib.bpf_object__next_program(pointer, 0); p; p = lib.bpf_object__next_program(pointer, p)) {
      const info = { name: lib.bpf_program__name(p), section: lib.bpf_program__section_name(p), type: lib.bpf_program__type(p), pointer: p };
      this.programsByName.set(info.name, info);
    }
    for (let m = lib.bpf_object__next_map(pointer, 0); m; m = lib.bpf_object__next_map(pointer, m)) {
      const map = new BpfMap(this, m);
      this.mapsByName.set(map.name, map);
    }
    this.findKnobs();
    track(this);
  }

  get state(): ObjectState {
    return this.currentState;
  }

  // --- before load ------------------------------------------------------------------------

  /** The `const volatile` globals of .rodata: name, offset, size. */
  knobs(): VariableLayout[] {
    return [...this.knobLayout.values()];
  }

  /** Sets a `const volatile` knob; only before load. Integers by size (1, 2, 4, 8 bytes), else bytes or a string. */
  setKnob(name: string, value: KnobValue): void {
    this.require('set knob', 'opened');
    const layout = this.knobLayout.get(name);
    if (!layout || !this.rodata) {
      const known = [...this.knobLayout.keys()].join(', ') || 'none';
      throw new BpfConfigError(`${this.path} has no knob '${name}' (const volatile in .rodata); knobs: ${known}`);
    }
    encodeKnob(name, this.rodata.subarray(layout.offset, layout.offset + layout.size), value);
  }

  /** A copy of a knob's current bytes; only before load. */
  knob(name: string): Buffer {
    this.require('read knob', 'opened');
    const layout = this.knobLayout.get(name);
    if (!layout || !this.rodata) throw new BpfConfigError(`${this.path} has no knob '${name}'`);
    return Buffer.from(this.rodata.subarray(layout.offset, layout.offset + layout.size));
  }

  /** Resizes a map; only before load. */
  setMaxEntries(mapName: string, entries: number): void {
    this.map(mapName).setMaxEntries(entries);
  }

  /** Leaves a program out of load (and attach); for optional, feature-probed programs. */
  setAutoload(programName: string, enabled: boolean): void {
    this.require('change autoload', 'opened');
    const ret = lib.bpf_program__set_autoload(this.program(programName).pointer, enabled ? 1 : 0);
    if (ret < 0) throw new BpfCallError(`bpf_program__set_autoload('${programName}')`, -ret);
  }

  // --- load -------------------------------------------------------------------------------

  /**
   * Creates the maps and loads the programs (bpf_object__load). On failure the object is closed
   * (libbpf cannot load it twice) and a BpfLoadError carries the rejected program's verifier log;
   * EPERM is a BpfNotPermittedError.
   */
  async load(): Promise<void> {
    this.require('load', 'opened');
    const level = this.options.verifierLogLevel ?? 0;
    const size = this.options.verifierLogSize ?? DEFAULT_LOG_SIZE;
    const logs = new Map<string, Buffer>();
    for (const program of this.programsByName.values()) {
      if (!lib.bpf_program__autoload(program.pointer)) continue;
      // libbpf keeps the pointer until the load: the Buffer lives in `logs` until then.
      const buf = Buffer.alloc(size);
      lib.bpf_program__set_log_buf(program.pointer, buf, size);
      if (level) lib.bpf_program__set_log_level(program.pointer, level);
      logs.set(program.name, buf);
    }
    const messages: string[] = [];
    let ret: number;
    try {
      ret = (await withLibbpfLog(this.logger, () => lib.bpf_object__load(this.pointer), messages)).value;
    } finally {
      // libbpf must not keep pointers to Buffers that will be collected.
      for (const name of logs.keys()) lib.bpf_program__clear_log_buf(this.program(name).pointer, 0, 0);
    }
    for (const [name, buf] of logs) {
      const end = buf.indexOf(0);
      const text = buf.toString('utf8', 0, end < 0 ? buf.length : end);
      if (text) this.verifierLogs.set(name, text);
    }
    this.rodata = undefined;
    if (ret < 0) {
      const errno = -ret;
      // With log level 0, only a rejected program has a log; with more, the last one loaded failed.
      const failed = [...this.verifierLogs.entries()].at(level ? -1 : 0) ?? ['', ''];
      this.close();
      if (errno === EPERM) throw new BpfNotPermittedError(`loading ${this.path}`, errno);
      throw new BpfLoadError(this.path, errno, failed[0], failed[1], messages);
    }
    this.currentState = 'loaded';
    this.logger.debug({ programs: this.programsByName.size, maps: this.mapsByName.size }, 'BPF object loaded');
  }

  /** A program's verifier log after load, when verifierLogLevel > 0 ('' otherwise). */
  verifierLog(programName: string): string {
    return this.verifierLogs.get(programName) ?? '';
  }

  // --- attach -----------------------------------------------------------------------------

  /**
   * Attaches every loaded program that is not attached yet, each on its own, and reports each
   * outcome. A missing tracepoint is 'unsupported', not an error, unless the program is `required`.
   */
  async attach(options: AttachOptions = {}): Promise<AttachResult[]> {
    this.require('attach', 'loaded');
    const results: AttachResult[] = [];
    const messages: string[] = [];
    await withLibbpfLog(
      this.logger,
      async () => {
        for (const program of this.programsByName.values()) {
          if (!lib.bpf_program__autoload(program.pointer) || isRunOnly(program)) continue;
          if (options.only ? !options.only.includes(program.name) : options.skip?.includes(program.name)) continue;
          if (this.links.has(program.name)) {
            results.push({ name: program.name, section: program.section, status: 'attached', reason: '', errno: 0 });
            continue;
          }
          const from = messages.length;
          const { link, result } = await attachProgram(
            program.pointer,
            program.name,
            program.section,
            program.type,
            () => this.openCgroup(options.cgroupPath),
            () => messages.slice(from),
          );
          if (link) this.links.set(program.name, link);
          results.push(result);
        }
      },
      messages,
    );
    for (const r of results) {
      if (r.status === 'attached') this.logger.info({ program: r.name, section: r.section }, 'BPF program attached');
      else this.logger.warn({ program: r.name, section: r.section, status: r.status, errno: r.errno, reason: r.reason }, 'BPF program not attached');
    }
    for (const name of options.required ?? []) {
      const r = results.find((x) => x.name === name);
      if (!r) throw new BpfAttachError(name, `${this.path} has no loaded program of that name`);
      if (r.status !== 'attached') throw new BpfAttachError(name, r.reason, r.errno);
    }
    return results;
  }

  // --- after load -------------------------------------------------------------------------

  map(name: string): BpfMap {
    const map = this.mapsByName.get(name);
    if (!map) throw new BpfConfigError(`${this.path} has no map '${name}'; maps: ${[...this.mapsByName.keys()].join(', ')}`);
    return map;
  }

  maps(): BpfMap[] {
    return [...this.mapsByName.values()];
  }

  programs(): ProgramInfo[] {
    return [...this.programsByName.values()];
  }

  /** A consumer of ring buffer map `mapName`; closed with the object. */
  ringBuffer(mapName: string, handler: SampleHandler, options: RingBufferOptions = {}): RingBuffer {
    this.require('open a ring buffer of', 'loaded');
    const ring = new RingBuffer(this.map(mapName), handler, { logger: this.logger, ...options });
    this.rings.add(ring);
    return ring;
  }

  /** Array map `mapName` (BPF_F_MMAPABLE) mapped read-only; unmapped with the object. */
  mappedArray(mapName: string): MappedArray {
    this.require('map', 'loaded');
    const mapped = new MappedArray(this.map(mapName));
    this.mappedArrays.add(mapped);
    return mapped;
  }

  /** Detaches one program (destroys its link); false when it was not attached. */
  detach(programName: string): boolean {
    const link = this.links.get(programName);
    if (link === undefined) return false;
    this.destroyLink(programName, link);
    this.links.delete(programName);
    return true;
  }

  /** Whether a program of this object is attached now. */
  isAttached(programName: string): boolean {
    return this.links.has(programName);
  }

  /** Unmaps rings and arrays, destroys links (detaching every program), closes the object. Idempotent. */
  close(): void {
    if (this.currentState === 'closed') return;
    for (const ring of this.rings) ring.close();
    this.rings.clear();
    for (const mapped of this.mappedArrays) mapped.close();
    this.mappedArrays.clear();
    for (const [name, link] of this.links) this.destroyLink(name, link);
    this.links.clear();
    this.rodata = undefined;
    lib.bpf_object__close(this.pointer);
    if (this.cgroupFd >= 0) closeSync(this.cgroupFd);
    this.cgroupFd = -1;
    this.currentState = 'closed';
    untrack(this);
  }

  /**
   * Runs a program that is never attached (a bare SEC("raw_tp")) once, now, on this thread,
   * through BPF_PROG_TEST_RUN; returns its return value.
   */
  run(programName: string): number {
    this.require('run a program', 'loaded');
    const program = this.program(programName);
    if (!isRunOnly(program)) throw new BpfConfigError(`program '${programName}' (SEC("${program.section}")) is attached, not run: only a bare SEC("raw_tp") program can be run`);
    const opts = this.testRunOpts;
    opts.fill(0);
    opts.writeBigUInt64LE(BigInt(lib.TEST_RUN_OPTS_SIZE), 0);
    const ret = lib.bpf_prog_test_run_opts(lib.bpf_program__fd(program.pointer), opts);
    if (ret < 0) throw new BpfCallError(`BPF_PROG_TEST_RUN of '${programName}'`, -ret);
    return opts.readUInt32LE(lib.TEST_RUN_OPTS_RETVAL);
  }

  // --- internals --------------------------------------------------------------------------

  private readonly testRunOpts = Buffer.alloc(lib.TEST_RUN_OPTS_SIZE);

  private destroyLink(programName: string, link: Ptr): void {
    const ret = lib.bpf_link__destroy(link);
    if (ret < 0) this.logger.warn({ program: programName, errno: -ret }, 'bpf_link__destroy failed');
  }

  private program(name: string): ProgramInfo {
    const program = this.programsByName.get(name);
    if (!program) throw new BpfConfigError(`${this.path} has no program '${name}'; programs: ${[...this.programsByName.keys()].join(', ')}`);
    return program;
  }

  private require(action: string, state: ObjectState): void {
    if (this.currentState !== state) {
      const when = state === 'opened' ? 'before load' : 'after load';
      throw new BpfConfigError(`cannot ${action} ${this.path} now: only ${when} (the object is ${this.currentState})`);
    }
  }

  // .rodata's map is named '<object>.rodata' (libbpf prefixes the object name); its BTF DATASEC is '.rodata'.
  private findKnobs(): void {
    const map = [...this.mapsByName.values()].find((m) => m.name.endsWith('.rodata'));
    if (!map) return;
    const sizeOut = Buffer.alloc(8);
    const address = lib.bpf_map__initial_value(map.pointer, sizeOut);
    const size = Number(sizeOut.readBigUInt64LE(0));
    if (!address || size === 0) return;
    this.rodata = externalBuffer(address, size);
    for (const v of sectionVariables(lib.bpf_object__btf(this.pointer), '.rodata')) {
      if (v.offset + v.size <= size) this.knobLayout.set(v.name, v);
    }
  }

  private openCgroup(path: string | undefined): number {
    if (this.cgroupFd >= 0) return this.cgroupFd;
    const dir = path ?? cgroup2Root();
    if (!dir) throw new Error('no cgroup v2 hierarchy is mounted');
    this.cgroupFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    return this.cgroupFd;
  }
}

/** A raw tracepoint program with no target is run by user space (BpfObject.run), never attached. */
function isRunOnly(program: ProgramInfo): boolean {
  return program.type === ProgramType.RAW_TRACEPOINT && (program.section === 'raw_tp' || program.section === 'raw_tracepoint');
}
