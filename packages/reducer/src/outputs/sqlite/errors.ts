// Typed errors. Both are user errors: the CLI and the API print the message as it is (one line,
// no stack), so each message says what is wrong and what to do.

export type StoreOpenErrorCode =
  /** The file or its directory cannot be opened or created. */
  | 'CANNOT_OPEN'
  /** The file exists but is not an SQLite database. */
  | 'NOT_A_DATABASE'
  /** The file is read-only for this process, or another process holds its lock. */
  | 'NOT_WRITABLE'
  /** A query tool was pointed at a file that does not exist. */
  | 'NOT_FOUND'
  /** An SQLite database, but not one this reducer wrote (no schema table, or a newer schema). */
  | 'NOT_A_STORE'
  /** Anything else SQLite refused while opening. */
  | 'OPEN_FAILED';

export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
  constructor(
    readonly code: StoreOpenErrorCode,
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A query parameter (HTTP query string or CLI option) that cannot be used. */
export class ParamError extends Error {
  override readonly name = 'ParamError';
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(`${param}: ${message}`);
  }
}
