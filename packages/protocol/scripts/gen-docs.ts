// Writes docs/protocol.md from the schema; with --check, fails when the file is out of date.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderProtocolDoc } from '../src/docs.js';

const target = fileURLToPath(new URL('../../../../docs/protocol.md', import.meta.url));
const expected = renderProtocolDoc();

if (process.argv.includes('--check')) {
  let actual = '';
  try {
    actual = readFileSync(target, 'utf8');
  } catch {
    // missing: reported below
  }
  if (actual !== expected) {
    console.error(`${target} is out of date with the schema: run \`pnpm docs:protocol\` and commit the result.`);
    process.exit(1);
  }
  console.log(`${target} is up to date.`);
} else {
  writeFileSync(target, expected);
  console.log(`wrote ${target}`);
}
