// Both binaries exist from the start and explain themselves.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = (pkg: string) => fileURLToPath(new URL(`../../packages/${pkg}/dist/src/cli.js`, import.meta.url));

for (const [pkg, name] of [['collector', 'kernel-collector'], ['reducer', 'reducer']] as const) {
  test(`${name} --help lists its options and exits 0`, () => {
    const out = execFileSync(process.execPath, [bin(pkg), '--help'], { encoding: 'utf8' });
    assert.match(out, new RegExp(`Usage: ${name}`));
    assert.match(out, /--log-level <level>/);
    assert.match(out, /--help/);
  });
}
