// Process lifecycle on the real kernel: fork, exec and exit events for processes this test
// starts, with exact pids, parents, comm, filename, start times and exit codes; threads must not
// show up as processes. Root only.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { after, describe, it } from 'node:test';
import { EventType, type ProcessEvent } from '../src/kernel/index.js';
import { Child, killChildren, pythonPath, run } from './support/children.js';
import { OWN_NETNS, ProbeSession, SKIP_NOT_ROOT, closeAllAndCheckReleased, ownCgroupId, typeNames } from './support/probes.js';

const GROUP_DEAD = 1;
const OWN_COMM = readFileSync('/proc/self/comm', 'utf8').trim();

function pick(e: ProcessEvent, expected: Partial<ProcessEvent>): Partial<ProcessEvent> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(expected)) out[key] = e[key as keyof ProcessEvent];
  return out as Partial<ProcessEvent>;
}

function assertEvent(e: ProcessEvent | undefined, expected: Partial<ProcessEvent>, what: string): asserts e is ProcessEvent {
  assert.ok(e, `${what}: missing`);
  assert.deepEqual(pick(e, expected), expected, what);
}

describe('kernel: process lifecycle', { skip: SKIP_NOT_ROOT }, () => {
  after(async () => {
    await killChildren();
    await closeAllAndCheckReleased();
  });

  it('sh forks and execs /bin/sleep, then exits 3: fork, exec, exit events with exact fields', async () => {
    const session = await ProbeSession.open();
    try {
      // sh (child of this process) starts sleep in the background, prints its pid, waits, exits 3.
      const r = await run('/bin/sh', ['-c', '/bin/sleep 0.2 & echo $!; wait $!; exit 3']);
      assert.equal(r.status.code, 3);
      const sh = r.pid;
      const sleep = Number(r.stdout.trim());
      assert.ok(sleep > 0 && sleep !== sh);

      const mine = (): ProcessEvent[] => session.processEvents((e) => e.pid === sh || e.pid === sleep);
      await session.waitFor('the exit of sh', () => (mine().some((e) => e.type === EventType.PROC_EXIT && e.pid === sh) ? true : undefined));
      const events = mine();
      assert.deepEqual(
        events.map((e) => `${typeNames([e])[0]}:${e.pid === sh ? 'sh' : 'sleep'}`),
        ['PROC_FORK:sh', 'PROC_EXEC:sh', 'PROC_FORK:sleep', 'PROC_EXEC:sleep', 'PROC_EXIT:sleep', 'PROC_EXIT:sh'],
      );
      const [forkSh, execSh, forkSleep, execSleep, exitSleep, exitSh] = events;
      const cgroupId = ownCgroupId();
      const common = { uid: 0, netns: OWN_NETNS, ...(cgroupId !== undefined ? { cgroupId } : {}) };

      // fork: the child's pid, its parent, and the comm it inherits; no exit code, no filename.
      assertEvent(forkSh, { ...common, pid: sh, ppid: process.pid, comm: OWN_COMM, exitCode: 0, filename: '', flags: 0 }, 'fork of sh');
      assertEvent(execSh, { ...common, pid: sh, ppid: process.pid, comm: 'sh', filename: '/bin/sh', exitCode: 0 }, 'exec of /bin/sh');
      assertEvent(forkSleep, { ...common, pid: sleep, ppid: sh, comm: 'sh', filename: '' }, 'fork of sleep');
      assertEvent(execSleep, { ...common, pid: sleep, ppid: sh, comm: 'sleep', filename: '/bin/sleep' }, 'exec of /bin/sleep');
      // exit: task->exit_code is a wait status (code << 8 | signal); the last thread, so group_dead.
      assertEvent(exitSleep, { ...common, pid: sleep, ppid: sh, comm: 'sleep', exitCode: 0, flags: GROUP_DEAD }, 'exit of sleep');
      assertEvent(exitSh, { ...common, pid: sh, ppid: process.pid, comm: 'sh', exitCode: 3 << 8, flags: GROUP_DEAD }, 'exit of sh');

      // A process keeps its start time across exec; timestamps follow the ring order.
      assert.equal(execSh.startNs, forkSh.startNs);
      assert.equal(exitSh.startNs, forkSh.startNs);
      assert.equal(execSleep.startNs, forkSleep.startNs);
      assert.equal(exitSleep.startNs, forkSleep.startNs);
      assert.ok(forkSleep.startNs > forkSh.startNs);
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.tsNs >= events[i - 1]!.tsNs);
    } finally {
      session.close();
    }
  });

  it('threads are not processes: four threads, one forked child → one fork event, exit codes', async () => {
    const session = await ProbeSession.open();
    try {
      const child = Child.python('threads-fork', [7]);
      const result = await child.next<{ pid: number; child: number; status: number }>();
      await child.finish();
      assert.equal(result.pid, child.pid);
      assert.equal(result.status, 7 << 8);
      const py = child.pid;
      const grandchild = result.child;

      await session.waitFor('the exit of python', () => (session.processEvents((e) => e.type === EventType.PROC_EXIT && e.pid === py).length ? true : undefined));
      // Forks whose parent is python: exactly the one process, none for its four threads (and
      // none for the threads python itself starts).
      const forks = session.processEvents((e) => e.type === EventType.PROC_FORK && e.ppid === py);
      assert.deepEqual(forks.map((e) => e.pid), [grandchild]);
      // Exit events: one per process (thread-group leader), none for the threads.
      const exits = session.processEvents((e) => e.type === EventType.PROC_EXIT && (e.pid === py || e.pid === grandchild));
      assert.deepEqual(exits.map((e) => [e.pid, e.exitCode]), [
        [grandchild, 7 << 8],
        [py, 0],
      ]);
      const execs = session.processEvents((e) => e.type === EventType.PROC_EXEC && e.pid === py);
      assert.equal(execs.length, 1, 'python was exec()ed once');
      assert.deepEqual([execs[0]!.comm, execs[0]!.filename], [basename(pythonPath()).slice(0, 15), pythonPath()]);
    } finally {
      session.close();
    }
  });

  it('a process killed by a signal: exit code is the signal number', async () => {
    const session = await ProbeSession.open();
    const child = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      const pid = child.pid!;
      await session.waitFor('the exec of sleep', () => session.processEvents((e) => e.type === EventType.PROC_EXEC && e.pid === pid)[0]);
      child.kill('SIGTERM');
      await once(child, 'exit');
      const exit = await session.waitFor('the exit of sleep', () => session.processEvents((e) => e.type === EventType.PROC_EXIT && e.pid === pid)[0]);
      assertEvent(exit, { pid, ppid: process.pid, comm: 'sleep', exitCode: 15, flags: GROUP_DEAD }, 'exit by SIGTERM');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      session.close();
    }
  });
});
