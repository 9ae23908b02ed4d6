// Shared bench plumbing: timing, medians, JSON-line output and the machine they ran on.

import { cpus, hostname } from 'node:os';

/** Runs `fn` once to warm up, then `rounds` times; returns each round's seconds. */
export function timeIt(rounds: number, fn: () => void): number[] {
  fn();
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = process.hrtime.bigint();
    fn();
    out.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return out;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const machine = { host: hostname(), cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version };

/** Prints one figure as a JSON line, rounded for reading, with the date and the machine. */
export function emit(figure: Record<string, unknown>): void {
  const rounded: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(figure)) rounded[k] = typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v;
  console.log(JSON.stringify({ ...rounded, date: new Date().toISOString(), machine }));
}

/** Parses `--name value` numeric flags over the given defaults. */
export function parseBenchArgs<T extends Record<string, number>>(defaults: T): T {
  const out: Record<string, number> = { ...defaults };
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const key = args[i]!.replace(/^--/, '');
    if (!(key in out)) throw new Error(`unknown option ${args[i]}; options: ${Object.keys(out).map((k) => `--${k}`).join(' ')}`);
    const value = Number(args[++i]);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${key} takes a positive number`);
    out[key] = value;
  }
  return out as T;
}
