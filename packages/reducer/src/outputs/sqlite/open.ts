// Opening a database file: the writer (creates, WAL, migrates) and the read-only query tools.
// Every failure becomes a StoreOpenError whose message names the path and the fix.

import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { StoreOpenError } from './errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

/** How long a statement waits for another connection's lock before failing. */
const BUSY_TIMEOUT_MS = 5000;

/** Opens or creates the store's file for writing and brings its schema up to date. */
export function openWritable(path: string): Database.Database {
  return guard(path, (db) => {
    // WAL: readers (the query CLI, the API) never block the writer, and commits append.
    db.pragma('journal_mode = WAL');
    // In WAL mode NORMAL loses at most the last commits on power loss, never consistency.
    db.pragma('synchronous = NORMAL');
    migrate(db, path);
  }, { timeout: BUSY_TIMEOUT_MS });
}

/** Opens an existing store for queries only; it must exist and have this reducer's schema. */
export function openReadOnly(path: string): Database.Database {
  if (path !== ':memory:' && !existsSync(path)) {
    throw new StoreOpenError('NOT_FOUND', path, `cannot open SQLite database "${path}": no such file; pass the file the reducer writes (its SQLite path option)`);
  }
  return guard(path, (db) => {
    const version = schemaVersion(db);
    if (version === undefined) throw notAStore(path);
    if (version > SCHEMA_VERSION) throw newerSchema(path, version);
    if (version < SCHEMA_VERSION) {
      throw new StoreOpenError('NOT_A_STORE', path, `cannot query "${path}": its schema (version ${version}) is older than this tool's (${SCHEMA_VERSION}); start this reducer on it once to upgrade it`);
    }
  }, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
}

function guard(path: string, setup: (db: Database.Database) => void, options: Database.Options): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, options);
    setup(db);
    return db;
  } catch (e) {
    db?.close();
    throw e instanceof StoreOpenError ? e : toOpenError(path, e);
  }
}

function migrate(db: Database.Database, path: string): void {
  db.transaction(() => {
    let version = schemaVersion(db);
    if (version === undefined) {
      // A database with tables but no schema_version belongs to some other program.
      const { n } = db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as { n: number };
      if (n > 0) throw notAStore(path);
      db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
      db.exec('INSERT INTO schema_version (version) VALUES (0)');
      version = 0;
    }
    if (version > SCHEMA_VERSION) throw newerSchema(path, version);
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string);
    db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
  }).immediate();
}

function schemaVersion(db: Database.Database): number | undefined {
  const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'").get();
  if (table === undefined) return undefined;
  const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  return row?.version ?? 0;
}

function notAStore(path: string): StoreOpenError {
  return new StoreOpenError('NOT_A_STORE', path, `cannot use "${path}": it is an SQLite database of another program (no schema_version table); choose another path`);
}

function newerSchema(path: string, version: number): StoreOpenError {
  return new StoreOpenError('NOT_A_STORE', path, `cannot use "${path}": a newer reducer wrote it (schema version ${version}, this one knows ${SCHEMA_VERSION}); use that reducer or another path`);
}

function toOpenError(path: string, e: unknown): StoreOpenError {
  const code = (e as { code?: unknown }).code;
  const reason = e instanceof Error ? e.message : String(e);
  const where = `cannot open SQLite database "${path}"`;
  if (e instanceof TypeError && /directory does not exist/.test(reason)) {
    return new StoreOpenError('CANNOT_OPEN', path, `${where}: its directory does not exist; create it or choose another path`, { cause: e });
  }
  switch (code) {
    case 'SQLITE_CANTOPEN':
      return new StoreOpenError('CANNOT_OPEN', path, `${where}: ${reason} (a directory, or a directory this process may not write); pass a writable file path`, { cause: e });
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return new StoreOpenError('NOT_A_DATABASE', path, `${where}: ${reason}; choose another path or move that file away`, { cause: e });
    case 'SQLITE_READONLY':
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return new StoreOpenError('NOT_WRITABLE', path, `${where}: ${reason}; give this process write access to the file and its directory, or choose another path`, { cause: e });
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new StoreOpenError('NOT_WRITABLE', path, `${where}: ${reason} (another process holds it; a second reducer?); stop that process or choose another path`, { cause: e });
    default:
      return new StoreOpenError('OPEN_FAILED', path, `${where}: ${reason}${typeof code === 'string' ? ` (${code})` : ''}; check the path and its disk`, { cause: e });
  }
}
