// The counters of live TCP connections, kept in the data directory across a restart of the
// collector (an upgrade, a configuration change). A clean stop whose last reports the reducer
// acknowledged writes, per connection, the kernel's counters as last reported. The next start on
// the same boot takes the file (once) and a connection it adopts counts its first delta from
// those counters, not from the moment of adoption: what moved while no collector ran is
// reported too, and nothing twice. The file is ignored when it is from another boot (sockets do
// not survive one), older than SAVED_MAX_AGE_MS, or malformed.

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SavedCounters {
  bytesSent: number;
  bytesReceived: number;
  segsOut: number;
  segsIn: number;
  retransmits: number;
}

export interface SavedConnection extends SavedCounters {
  netns: number;
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
}

export interface TakenConnections {
  connections: SavedConnection[];
  /** Why a file that was there is not used; undefined when it is used or there was none. */
  ignored?: string;
}

const FILE_NAME = 'tcp-connections.json';
const VERSION = 1;
/** Past this, a restart is not a restart but a new start: the gap would be too old to report. */
export const SAVED_MAX_AGE_MS = 15 * 60_000;
const COUNTERS = ['bytesSent', 'bytesReceived', 'segsOut', 'segsIn', 'retransmits'] as const;

export function savedConnectionsPath(dataDir: string): string {
  return join(dataDir, FILE_NAME);
}

/** Writes the file (whole or not at all: a temporary file renamed over it). */
export function saveConnections(dataDir: string, bootId: string, connections: readonly SavedConnection[], nowMs = Date.now()): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = savedConnectionsPath(dataDir);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify({ version: VERSION, bootId, savedAtMs: nowMs, connections }), { mode: 0o600 });
  renameSync(tmp, path);
}

/** Reads and removes the file: its baselines are good for the first start after the stop only. */
export function takeSavedConnections(dataDir: string, bootId: string, nowMs = Date.now()): TakenConnections {
  const path = savedConnectionsPath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { connections: [] };
    return { connections: [], ignored: `cannot read ${path}: ${(error as Error).message}` };
  }
  try {
    rmSync(path, { force: true });
  } catch (error) {
    // Left in place, it would give stale baselines to a later start too.
    return { connections: [], ignored: `cannot remove ${path} after reading it: ${(error as Error).message}` };
  }
  let saved: { version?: unknown; bootId?: unknown; savedAtMs?: unknown; connections?: unknown };
  try {
    saved = JSON.parse(text) as typeof saved;
  } catch (error) {
    return { connections: [], ignored: `${path} is not JSON: ${(error as Error).message}` };
  }
  if (saved.version !== VERSION || !Array.isArray(saved.connections) || typeof saved.savedAtMs !== 'number') return { connections: [], ignored: `${path} is not a version ${VERSION} file of this collector` };
  if (saved.bootId !== bootId) return { connections: [], ignored: `${path} is from another boot` };
  const ageMs = nowMs - saved.savedAtMs;
  if (ageMs < 0 || ageMs > SAVED_MAX_AGE_MS) return { connections: [], ignored: `${path} was written ${Math.round(ageMs / 1000)} s ago (more than ${SAVED_MAX_AGE_MS / 60_000} min, or in the future)` };
  const connections = saved.connections as Array<Partial<SavedConnection>>;
  const malformed = connections.find((c) => !isSavedConnection(c));
  if (malformed) return { connections: [], ignored: `${path} has a malformed entry: ${JSON.stringify(malformed).slice(0, 200)}` };
  return { connections: connections as SavedConnection[] };
}

function isSavedConnection(c: Partial<SavedConnection>): c is SavedConnection {
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  return typeof c === 'object' && c !== null && typeof c.localAddr === 'string' && typeof c.remoteAddr === 'string'
    && count(c.netns) && count(c.localPort) && count(c.remotePort) && COUNTERS.every((k) => count(c[k]));
}
