// Test helpers: encode one message into a frame, and collect decoded messages as plain copies.

import { FrameEncoder, type MessageHandlers, type MessageName, wire } from '../src/index.js';

export interface Decoded {
  name: string;
  value: Record<string, unknown>;
}

/** Handlers for every message that push a copy of each into `out`. */
export function collectingHandlers(out: Decoded[]): MessageHandlers {
  const handlers: Record<string, (m: object) => void> = {};
  for (const l of wire.layouts) handlers[l.spec.name] = (m) => out.push({ name: l.spec.name, value: { ...m } });
  return handlers as MessageHandlers;
}

export function encodeFrame(messages: ReadonlyArray<[MessageName, Record<string, unknown>]>): Uint8Array {
  const encoder = new FrameEncoder();
  for (const [name, value] of messages) encoder.writeAny(name, value);
  return encoder.finish();
}

/** A small deterministic PRNG (mulberry32), so that random tests replay exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
