// `const volatile` knobs: encoding a JS value into a knob's bytes in .rodata, before load.
// BPF on x86-64 and arm64 is little-endian (bpfel), like its host.

import { BpfConfigError } from './errors.js';

export type KnobValue = number | bigint | boolean | string | Uint8Array;

/** Writes `value` into `target` (exactly the knob's bytes). */
export function encodeKnob(name: string, target: Buffer, value: KnobValue): void {
  const size = target.length;
  if (typeof value === 'string' || value instanceof Uint8Array) {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    // Strings keep a NUL; byte arrays may fill the knob exactly.
    const limit = typeof value === 'string' ? size - 1 : size;
    if (bytes.length > limit) throw new BpfConfigError(`knob '${name}' holds ${size} bytes; the value needs ${bytes.length + (size - limit)}`);
    target.fill(0);
    target.set(bytes);
    return;
  }
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8) {
    throw new BpfConfigError(`knob '${name}' is ${size} bytes wide: set it with a Buffer or a string`);
  }
  const big = typeof value === 'boolean' ? BigInt(value ? 1 : 0) : toBigInt(name, value);
  const bits = size * 8;
  // Accept both the signed and the unsigned range of the width; store two's complement.
  if (big < -(1n << BigInt(bits - 1)) || big >= 1n << BigInt(bits)) {
    throw new BpfConfigError(`knob '${name}' (${size} bytes) cannot hold ${value}`);
  }
  const unsigned = BigInt.asUintN(bits, big);
  for (let i = 0; i < size; i++) target[i] = Number((unsigned >> BigInt(8 * i)) & 0xffn);
}

function toBigInt(name: string, value: number | bigint): bigint {
  if (typeof value === 'bigint') return value;
  if (!Number.isSafeInteger(value)) throw new BpfConfigError(`knob '${name}': ${value} is not a safe integer (use a bigint)`);
  return BigInt(value);
}
