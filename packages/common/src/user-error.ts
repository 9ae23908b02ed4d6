// Errors a user can cause (a missing variable, a port in use, not root) end the program with
// one line that says what is wrong and what to do, and a non-zero exit; never a stack trace.

export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    message: string,
    /** Exit status: 2 for bad configuration, 1 for the rest. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Prints a UserError's one line and exits; anything else is a bug and is rethrown. */
export function exitOnUserError(program: string, error: unknown): never {
  if (error instanceof UserError) {
    process.stderr.write(`${program}: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  throw error;
}
