// End to end, the real kernel-collector binary: refusing to start without the reducer's
// address (one line, exit code 2, nothing loaded), and stopping on SIGTERM with exit code 0 and
// nothing of its own left in the kernel.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { COLLECTOR_CLI, CollectorProcess, SKIP_REASON, bpfPrograms, killAll } from './support/collector-process.js';
import { ATTACHED_PROGRAMS, PROGRAM_NAMES } from './support/probes.js';
import { TestIntakeServer } from './support/intake-server.js';

after(killAll);

const HAVE_STRACE = ((): boolean => {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

for (const missing of ['EBPF_NET_INTAKE_HOST', 'EBPF_NET_INTAKE_PORT']) {
  test(`without ${missing}: one line on stderr naming it, exit code 2, no BPF program loaded`, { skip: SKIP_REASON, timeout: 20_000 }, async () => {
    // Under strace (when installed), so that "no BPF program loaded" is seen, not assumed:
    // every bpf() system call of the collector and its threads is written to a file.
    const dir = mkdtempSync(join(tmpdir(), 'ebpfnet-collector-test-'));
    const trace = join(dir, 'bpf.trace');
    const args = ['--no-log-file', '--log-console', '--interval', '200ms'];
    const env: NodeJS.ProcessEnv = { ...process.env, EBPF_NET_INTAKE_HOST: '127.0.0.1', EBPF_NET_INTAKE_PORT: '9', EBPF_NET_HOST_DIR: '' };
    delete env[missing];
    const argv = [process.execPath, COLLECTOR_CLI, ...args];
    try {
      const status = await runToEnd(HAVE_STRACE ? ['strace', '-f', '-qq', '-e', 'trace=bpf', '-o', trace, ...argv] : argv, env);
      assert.equal(status.code, 2, `exit code; stderr: ${status.stderr}`);
      const lines = status.stderr.split('\n').filter((l) => l.length > 0);
      assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${status.stderr}`);
      assert.match(lines[0]!, new RegExp(missing), 'the line names the variable');
      assert.doesNotMatch(lines[0]!, /^\s+at /, 'no stack trace');
      assert.equal(status.stdout, '', 'nothing on stdout');
      if (HAVE_STRACE) {
        const calls = readFileSync(trace, 'utf8').split('\n').filter((l) => /\bbpf\(/.test(l));
        assert.deepEqual(calls, [], 'no bpf() system call at all');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('EBPF_NET_INTAKE_PORT that is not a port: one line naming it, exit code 2', { skip: SKIP_REASON, timeout: 20_000 }, async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, EBPF_NET_INTAKE_HOST: '127.0.0.1', EBPF_NET_INTAKE_PORT: '70000', EBPF_NET_HOST_DIR: '' };
  const status = await runToEnd([process.execPath, COLLECTOR_CLI, '--no-log-file', '--log-console'], env);
  assert.equal(status.code, 2, `exit code; stderr: ${status.stderr}`);
  const lines = status.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${status.stderr}`);
  assert.match(lines[0]!, /EBPF_NET_INTAKE_PORT/);
});

/** The pids of every descendant of `pid`, deepest last (from /proc/<pid>/task/<tid>/children). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const c of children.split(' ').filter(Boolean).map(Number)) out.push(c, ...descendants(c));
  }
  return out;
}

/** Runs argv to completion (killed after 15 s), collecting its output. */
function runToEnd(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => void (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => void (stderr += s));
    // On timeout, the whole tree by pid: strace killed alone would leave its tracee running.
    const timer = setTimeout(() => {
      for (const pid of [...descendants(child.pid!), child.pid!]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }, 15_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    });
  });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: exit code 0 within a few seconds, and none of its BPF programs left in the kernel`, { skip: SKIP_REASON, timeout: 40_000 }, async () => {
    const intake = await TestIntakeServer.start();
    const collector = CollectorProcess.start({ port: intake.port });
    try {
      await intake.waitFor(() => intake.connections[0]?.snapshot(), 20_000, 'the first snapshot').catch((e: Error) => {
        throw new Error(`${e.message}\n${collector.output()}`);
      });
      // The programs this collector holds, by id (other collectors may run meanwhile: ids, not names).
      const ids = collector.bpfProgramIds();
      const loaded = bpfPrograms().filter((p) => ids.has(p.id));
      assert.deepEqual(
        [...new Set(loaded.map((p) => p.name))].sort(),
        [...PROGRAM_NAMES].sort(),
        'the collector holds every program of the object while running',
      );
      assert.deepEqual([...intake.connections[0]!.handshake!.probes].sort(), [...ATTACHED_PROGRAMS].sort(), 'the handshake names every attached program');

      const t0 = Date.now();
      const status = await collector.stop(signal, 10_000);
      const ms = Date.now() - t0;
      assert.deepEqual(status, { code: 0, signal: null }, `exit status after ${signal}\n${collector.output()}`);
      assert.ok(ms < 5000, `exited ${ms} ms after ${signal}`);
      assert.ok(intake.connections[0]!.closed, 'the connection to the reducer was closed');

      // Programs are freed after an RCU grace period: poll up to 5 s.
      let left = loaded;
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        left = bpfPrograms().filter((p) => ids.has(p.id));
        if (left.length === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(
        left.map((p) => `${p.id} ${p.name} (${p.type})`),
        [],
        'programs of the collector still loaded 5 s after it exited (attached to a cgroup, pinned or linked)',
      );
    } finally {
      collector.kill();
      await intake.stop();
    }
  });
}

// SIGTERM must stop the collector whatever the state of its connection to the reducer: a
// node being drained must not wait for its grace period to run out (and a SIGKILL).
for (const situation of ['never reachable', 'gone away after a connection'] as const) {
  test(`SIGTERM while the reducer is ${situation}: exit code 0 within a few seconds`, { skip: SKIP_REASON, timeout: 40_000 }, async () => {
    const intake = await TestIntakeServer.start();
    const port = intake.port;
    if (situation === 'never reachable') await intake.stop();
    const collector = CollectorProcess.start({ port });
    try {
      if (situation === 'never reachable') {
        await collector.waitForLog(/unreachable/, 15_000);
      } else {
        await intake.waitFor(() => intake.connections[0]?.snapshot(), 20_000, 'the first snapshot');
        await intake.stop();
        await collector.waitForLog(/disconnected from the reducer/, 10_000);
      }
      // Let it fail a reconnection attempt or two (its socket is then closed, a retry pending).
      await new Promise((r) => setTimeout(r, 1500));
      const t0 = Date.now();
      const status = await collector.stop('SIGTERM', 8000);
      const ms = Date.now() - t0;
      assert.deepEqual(
        { status, inTime: ms < 5000 },
        { status: { code: 0, signal: null }, inTime: true },
        `${ms} ms after SIGTERM the collector ${status.signal === 'SIGKILL' ? 'was still running and was killed' : `exited with ${JSON.stringify(status)}`}\n${collector.output()}`,
      );
    } finally {
      collector.kill();
      await intake.stop();
    }
  });
}
