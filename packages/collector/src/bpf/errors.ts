// Typed errors, so callers can degrade instead of guessing from message text:
//   not root / no CAP_BPF       → BpfNotPermittedError
//   no kernel BTF (no CO-RE)    → BtfMissingError
//   verifier said no            → BpfLoadError, with the verifier's log
//   a required program failed   → BpfAttachError
//   misuse of this API          → BpfConfigError (unknown knob or map, wrong state, bad size)
// Every BpfError carries the errno (positive) when one exists, and its name.

import { errnoName } from './errno.js';

export class BpfError extends Error {
  override readonly name: string = 'BpfError';
  /** errno name ('ENOENT'), '' when no errno applies. */
  readonly code: string;
  constructor(
    message: string,
    /** Positive errno, 0 when none. */
    readonly errno = 0,
  ) {
    super(message);
    this.code = errno ? errnoName(errno) : '';
  }
}

/** libbpf.so.1 (or libc) could not be opened. */
export class LibbpfUnavailableError extends BpfError {
  override readonly name = 'LibbpfUnavailableError';
}

/** EPERM from bpf(2) or mount(2): the process is not root and lacks CAP_BPF / CAP_SYS_ADMIN. */
export class BpfNotPermittedError extends BpfError {
  override readonly name = 'BpfNotPermittedError';
  constructor(operation: string, errno: number) {
    super(`${operation}: operation not permitted (${errnoName(errno)}); run as root or grant CAP_BPF and CAP_PERFMON`, errno);
  }
}

/** The kernel exposes no BTF at /sys/kernel/btf/vmlinux, so CO-RE programs cannot be relocated. */
export class BtfMissingError extends BpfError {
  override readonly name = 'BtfMissingError';
  constructor(readonly path: string) {
    super(`kernel BTF not found at ${path}: the kernel needs CONFIG_DEBUG_INFO_BTF=y for CO-RE programs`);
  }
}

/** bpf_object__load failed. `verifierLog` holds the kernel's explanation when a program was rejected. */
export class BpfLoadError extends BpfError {
  override readonly name = 'BpfLoadError';
  constructor(
    readonly objectPath: string,
    errno: number,
    /** The program the verifier rejected, '' when the failure was elsewhere (maps, BTF, relocations). */
    readonly programName: string,
    /** The verifier log of that program (the tail, when it did not fit the buffer). */
    readonly verifierLog: string,
    /** libbpf's own messages printed during the load, one per entry. */
    readonly libbpfLog: readonly string[],
  ) {
    const where = programName ? `program '${programName}' in ${objectPath}` : objectPath;
    const last = lastLine(verifierLog) || lastLine(libbpfLog.join('\n'));
    super(`loading ${where} failed (${errnoName(errno)})${last ? `: ${last}` : ''}`, errno);
  }
}

/** A program that had to attach did not. */
export class BpfAttachError extends BpfError {
  override readonly name = 'BpfAttachError';
  constructor(
    readonly programName: string,
    reason: string,
    errno = 0,
  ) {
    super(`attaching program '${programName}' failed: ${reason}`, errno);
  }
}

/** The caller asked for something this object does not have, or at the wrong time. */
export class BpfConfigError extends BpfError {
  override readonly name = 'BpfConfigError';
}

/** Any other failed libbpf or libc call; `operation` names it. */
export class BpfCallError extends BpfError {
  override readonly name = 'BpfCallError';
  constructor(
    readonly operation: string,
    errno: number,
    detail = '',
  ) {
    super(`${operation} failed: ${errnoName(errno)}${detail ? ` (${detail})` : ''}`, errno);
  }
}

// The verifier ends its log with statistics ("processed 7 insns (limit 1000000) ...",
// "verification time ..."); the reason is the line before them.
const TRAILER = /^(processed \d+ insns|verification time|stack depth)/;

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !TRAILER.test(l));
  return lines.length ? lines[lines.length - 1]! : '';
}
