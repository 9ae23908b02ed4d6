// The README's first command, minus the set-up: the demo runs for a few seconds, shows the
// curl → python3 flow it makes, and stops with nothing left attached.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const demo = fileURLToPath(new URL('../../demo/dist/demo.js', import.meta.url));
const isRoot = process.getuid?.() === 0;

test('the demo shows live flows and stops cleanly', { skip: !isRoot && 'the demo loads BPF programs: run as root', timeout: 90_000 }, () => {
  const run = spawnSync(process.execPath, [demo, '--duration', '6', '--plain'], { encoding: 'utf8', timeout: 80_000 });
  assert.equal(run.status, 0, `exit status; stderr: ${run.stderr}`);
  assert.match(run.stdout, /CLIENT \(process@node\)\s+SERVER/);
  assert.match(run.stdout, /curl@\S+\s+python3@\S+\s+\d+(\.\d)? B\/s\s+\d+(\.\d)? (KiB|MiB)\/s/, 'the demo traffic, as a row with rates both ways');
  assert.match(run.stdout, /left attached: none/);
});
