// The file of open connections' counters a clean stop leaves for the next start: read once,
// only on the same boot and while recent, and never half-trusted when malformed.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { SAVED_MAX_AGE_MS, type SavedConnection, saveConnections, savedConnectionsPath, takeSavedConnections } from '../src/tracker/saved-connections.js';

const conn: SavedConnection = { netns: 4026531840, localAddr: '10.0.0.1', localPort: 40000, remoteAddr: '10.0.0.2', remotePort: 443, bytesSent: 12, bytesReceived: 3400, segsOut: 5, segsIn: 7, retransmits: 1 };

describe('saved connections', () => {
  let dir = '';
  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'ebpf-net-saved-')), 'data'); // created by the save
  });
  afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

  it('round trip on the same boot, then the file is gone', () => {
    saveConnections(dir, 'boot-1', [conn], 1_000_000);
    const taken = takeSavedConnections(dir, 'boot-1', 1_000_000 + 5_000);
    assert.equal(taken.ignored, undefined);
    assert.deepEqual(taken.connections, [conn]);
    assert.equal(existsSync(savedConnectionsPath(dir)), false);
    assert.deepEqual(takeSavedConnections(dir, 'boot-1'), { connections: [] }, 'no file: nothing, and nothing to say');
  });

  it('another boot, an old file, a malformed one: ignored, with the reason, and removed', () => {
    saveConnections(dir, 'boot-1', [conn], 1_000_000);
    assert.match(takeSavedConnections(dir, 'boot-2', 1_000_000).ignored ?? '', /another boot/);
    saveConnections(dir, 'boot-1', [conn], 1_000_000);
    assert.match(takeSavedConnections(dir, 'boot-1', 1_000_000 + SAVED_MAX_AGE_MS + 1).ignored ?? '', /written 90\d s ago/);
    writeFileSync(savedConnectionsPath(dir), '{"version":1,');
    assert.match(takeSavedConnections(dir, 'boot-1').ignored ?? '', /not JSON/);
    writeFileSync(savedConnectionsPath(dir), JSON.stringify({ version: 1, bootId: 'boot-1', savedAtMs: Date.now(), connections: [conn, { ...conn, bytesSent: -1 }] }));
    const malformed = takeSavedConnections(dir, 'boot-1');
    assert.match(malformed.ignored ?? '', /malformed entry/);
    assert.equal(malformed.connections.length, 0, 'none of a malformed file is used');
    assert.equal(existsSync(savedConnectionsPath(dir)), false);
  });
});
