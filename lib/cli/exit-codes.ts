import { CommanderError } from 'commander';
import { NotFoundError, StoreError, TokenGateError, ValidationError } from '../errors.js';

/**
 * Exit codes of `express-api-tokens`, one per kind of failure, so scripts can tell them apart.
 * Documented in docs/operations.md ("Exit codes"); keep the two in step.
 */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** A bug or an error nobody foresaw (the message says what). */
  INTERNAL: 1,
  /** Bad command line: unknown command or option, missing or invalid argument. */
  USAGE: 2,
  /** A token id that no live token has (for `revoke`: at least one of them). */
  NOT_FOUND: 3,
  /** The store cannot be reached or did not answer in time. */
  STORE_UNAVAILABLE: 4,
  /** The environment is incomplete or wrong: no store URL, a store that does not exist, no pepper, an unreadable `*_FILE`, a missing driver. */
  CONFIG: 5,
  /** The store refused the change by policy (e.g. the user already holds the most tokens allowed). */
  REFUSED: 6,
} as const;

/** A failure the CLI explains in one line and ends with a given exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(exitCode: number, message: string) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** The exit code and one-line message for anything a command threw. */
export function exitFor(err: unknown): { code: number; message: string | undefined } {
  if (err instanceof CliError) return { code: err.exitCode, message: err.message };
  if (err instanceof CommanderError) {
    // Help and --version end with "errors" that are successes; commander already printed its message.
    const fine = ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(err.code);
    return { code: fine ? EXIT.OK : EXIT.USAGE, message: undefined };
  }
  if (err instanceof ValidationError) return { code: EXIT.USAGE, message: err.message };
  if (err instanceof NotFoundError) return { code: EXIT.NOT_FOUND, message: err.message };
  if (err instanceof StoreError) return { code: EXIT.STORE_UNAVAILABLE, message: err.message };
  if (err instanceof TokenGateError)
    return { code: err.status === 503 ? EXIT.STORE_UNAVAILABLE : EXIT.REFUSED, message: err.message };
  return { code: EXIT.INTERNAL, message: err instanceof Error ? err.message : String(err) };
}
