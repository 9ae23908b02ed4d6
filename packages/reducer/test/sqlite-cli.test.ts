// `reducer query` against a real file: the aligned table, --json, --help, and one-line errors
// with a non-zero exit code.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { flowMetrics } from '../src/aggregation/metrics.js';
import type { Labels, SeriesPoint } from '../src/outputs/report.js';
import { SqliteStore, listSeries, openReadOnly, runQuery, topFlows } from '../src/outputs/sqlite/index.js';

/** A stream that keeps what is written to it. */
class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function query(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new Capture();
  const err = new Capture();
  const code = await runQuery(argv, out, err);
  return { code, out: out.text, err: err.text };
}

const CURL_NGINX: Labels = { aggregation: 'process', source_node: 'a', source_process: 'curl', dest_node: 'b', dest_process: 'nginx' };
const NGINX_CURL: Labels = { aggregation: 'process', source_node: 'b', source_process: 'nginx', dest_node: 'a', dest_process: 'curl' };
const A_B: Labels = { aggregation: 'node', source_node: 'a', dest_node: 'b' };

describe('reducer query', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-net-sqlite-cli-'));
  const db = join(dir, 'cli.db');
  // The CLI counts durations back from the real clock: the data sits in the last minutes.
  const end = Date.now() - 1000;
  const since = String(end - 5 * 60_000);

  before(async () => {
    const store = new SqliteStore(db);
    const points: SeriesPoint[] = [
      { metric: flowMetrics.tcpBytes, labels: CURL_NGINX, delta: 1536, value: 1536 },
      { metric: flowMetrics.tcpBytes, labels: NGINX_CURL, delta: 3 * 1024 * 1024 + 512 * 1024, value: 4 * 1024 * 1024 },
      { metric: flowMetrics.tcpBytes, labels: A_B, delta: 900, value: 900 },
      { metric: flowMetrics.tcpSegments, labels: CURL_NGINX, delta: 12, value: 12 },
    ];
    store.write({ startMs: end - 60_000, intervalStartMs: end - 10_000, endMs: end, points });
    await store.close();
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('top-flows prints an aligned table, bytes humanised', async () => {
    const { code, out, err } = await query('top-flows', '--db', db, '--since', since);
    assert.equal(err, '');
    assert.equal(code, 0);
    assert.equal(
      out,
      [
        'SOURCE                   DEST                    TOTAL',
        'node=b process=nginx  →  node=a process=curl   3.5 MiB',
        'node=a process=curl   →  node=b process=nginx  1.5 KiB',
        'node=a                →  node=b                  900 B',
        '',
      ].join('\n'),
    );
  });

  test('top-flows takes --aggregation, --metric, --limit and durations', async () => {
    const byNode = await query('top-flows', '--db', db, '--since', '10m', '--aggregation', 'node');
    assert.equal(byNode.out, ['SOURCE     DEST    TOTAL', 'node=a  →  node=b  900 B', ''].join('\n'));
    const segments = await query('top-flows', '--db', db, '--since', '1h', '--metric', 'tcp_segments', '--limit', '1');
    assert.equal(segments.out, ['SOURCE                  DEST                  TOTAL', 'node=a process=curl  →  node=b process=nginx     12', ''].join('\n'));
    const none = await query('top-flows', '--db', db, '--since', new Date(end).toISOString());
    assert.match(none.out, /^no flows with tcp_bytes samples since /);
  });

  test('top-flows --json prints the API body', async () => {
    const { code, out } = await query('top-flows', '--db', db, '--since', since, '--aggregation', 'process', '--json');
    assert.equal(code, 0);
    const reader = openReadOnly(db);
    const flows = topFlows(reader, { sinceMs: Number(since), aggregation: 'process' });
    reader.close();
    assert.deepEqual(JSON.parse(out), { metric: 'tcp_bytes', unit: 'By', sinceMs: Number(since), untilMs: null, aggregation: 'process', flows });
  });

  test('series prints a table, or JSON', async () => {
    const table = await query('series', '--db', db, '--metric', 'tcp_bytes');
    assert.equal(table.code, 0);
    const lines = table.out.trimEnd().split('\n');
    assert.match(lines[0] as string, /^ID {2}METRIC {5}KIND {5}UNIT {2}LAST SAMPLE {15}LABELS$/);
    assert.equal(lines.length, 4);
    assert.ok(lines.some((line) => line.endsWith('aggregation=process dest_node=b dest_process=nginx source_node=a source_process=curl')));

    const json = await query('series', '--db', db, '--json');
    const reader = openReadOnly(db);
    assert.deepEqual(JSON.parse(json.out), { series: listSeries(reader) });
    reader.close();
  });

  test('--help explains each option and its default', async () => {
    const { code, out } = await query('top-flows', '--help');
    assert.equal(code, 0);
    for (const text of ['Usage: reducer query top-flows [options]', '--db <file>', '--since <time>', 'a duration back from now (90s,', '(default: "tcp_bytes")', '(default: 20)', '--aggregation <level>', '--json']) {
      assert.ok(out.includes(text), `help mentions ${text}:\n${out}`);
    }
    const series = await query('series', '--help');
    assert.match(series.out, /--limit <n> +how many series to print \(default: 1000\)/);
    const top = await query('--help');
    assert.match(top.out, /top-flows \[options\]/);
  });

  test('usage errors exit 1 with the reason', async () => {
    const badSince = await query('top-flows', '--db', db, '--since', 'yesterday');
    assert.equal(badSince.code, 1);
    assert.match(badSince.err, /since: expected a duration/);
    const noSince = await query('top-flows', '--db', db);
    assert.equal(noSince.code, 1);
    assert.match(noSince.err, /required option '--since <time>' not specified/);
    const badLimit = await query('top-flows', '--db', db, '--since', '1h', '--limit', '0');
    assert.equal(badLimit.code, 1);
    assert.match(badLimit.err, /limit: expected an integer/);
    assert.equal((await query('frobnicate')).code, 1);
  });

  test('a file that cannot be queried is one line and exit 1', async () => {
    const missing = await query('top-flows', '--db', join(dir, 'typo.db'), '--since', '1h');
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^reducer query: cannot open SQLite database ".*typo\.db": no such file; [^\n]+\n$/);
    const garbage = join(dir, 'garbage.db');
    writeFileSync(garbage, 'not a database, only text: '.repeat(10));
    const notDb = await query('series', '--db', garbage);
    assert.equal(notDb.code, 1);
    assert.match(notDb.err, /^reducer query: cannot open SQLite database ".*garbage\.db": file is not a database; [^\n]+\n$/);
  });
});
