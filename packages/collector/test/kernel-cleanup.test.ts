// Cleanup on the real kernel: while KernelProbes is open, bpftool lists every program of
// ebpf_net.bpf.o, attached through a link; after close(), this process holds no BPF file
// descriptor and the kernel drops every program, map and link (raw tracepoint programs after an
// RCU grace period, hence the polling). Root only.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { REQUIRED_PROGRAMS } from '../src/kernel/index.js';
import { ATTACHED_PROGRAMS, PROGRAM_NAMES, ProbeSession, SKIP_NOT_ROOT, bpftoolList, closeAllAndCheckReleased, ownBpfIds, stillLoaded, waitUntilReleased } from './support/probes.js';

/** Maps of the object that the kernel creates (besides .rodata/.bss, whose names libbpf prefixes). */
const MAP_NAMES = ['events', 'tcp_keys', 'tcp_socks', 'tcp_snapshot', 'key_scratch', 'udp_socks', 'udp_remote', 'listeners', 'udp_stash', 'netns_allowed', 'drops'];

describe('kernel: cleanup', { skip: SKIP_NOT_ROOT }, () => {
  after(closeAllAndCheckReleased);

  it('every program is loaded and attached while open; nothing is left in the kernel after close()', async () => {
    const session = await ProbeSession.open();
    const ids = session.ids;
    try {
      // What the probes report: every program attached (this kernel has all the hooks).
      const results = session.probes.attachResults;
      assert.deepEqual(
        results.filter((r) => r.status !== 'attached').map((r) => `${r.name}: ${r.status} ${r.reason}`),
        [],
        'programs not attached',
      );
      assert.deepEqual([...session.probes.attachedProbes].sort(), [...ATTACHED_PROGRAMS].sort());
      for (const name of REQUIRED_PROGRAMS) assert.ok(session.probes.attachedProbes.includes(name));

      // What the kernel says: our program ids carry the programs' names; one link per attached
      // program; the object's maps exist.
      const progs = bpftoolList('prog').filter((p) => ids.progs.includes(p.id));
      assert.deepEqual(progs.map((p) => p.name).sort(), [...PROGRAM_NAMES].sort());
      assert.equal(ids.links.length, ATTACHED_PROGRAMS.length, 'one link per attached program');
      const links = bpftoolList('link').filter((l) => ids.links.includes(l.id)) as Array<{ id: number; prog_id: number }>;
      assert.ok(links.every((l) => ids.progs.includes(l.prog_id)) && new Set(links.map((l) => l.prog_id)).size === links.length, 'every link holds another of our programs');
      const maps = bpftoolList('map').filter((m) => ids.maps.includes(m.id));
      for (const name of MAP_NAMES) assert.ok(maps.some((m) => m.name === name), `map ${name} exists`);
    } finally {
      session.close();
    }

    // This process: no BPF file descriptor of the session any more, at once.
    const held = ownBpfIds();
    assert.deepEqual(held.progs.filter((id) => ids.progs.includes(id)), [], 'program fds after close()');
    assert.deepEqual(held.maps.filter((id) => ids.maps.includes(id)), [], 'map fds after close()');
    assert.deepEqual(held.links.filter((id) => ids.links.includes(id)), [], 'link fds after close()');
    // The kernel: links are gone at once; programs and maps within the grace period.
    assert.deepEqual(stillLoaded({ progs: [], maps: [], links: ids.links }), [], 'links after close()');
    assert.deepEqual(await waitUntilReleased(ids), [], 'still in the kernel 5 s after close()');
    const byName = bpftoolList('prog').filter((p) => ids.progs.includes(p.id));
    assert.deepEqual(byName, []);

    // KernelProbes.close() again is harmless.
    session.probes.close();
  });
});
