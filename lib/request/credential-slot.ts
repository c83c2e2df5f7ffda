import type { Request } from 'express';

/**
 * A credential waiting for verification, between `extractCredentials` and `authenticateToken`.
 * It sits under a symbol, not a named property, so it stays out of `JSON.stringify(req)` and
 * is cleared as soon as `authenticateToken` takes it.
 */
export interface PendingToken {
  token: string;
  /** The Basic user part, when the token came as a Basic password. */
  claimedUser?: string;
}

const PENDING = Symbol('express-api-tokens.pendingToken');

type WithPending = Request & { [PENDING]?: PendingToken | null };

export function setPendingToken(req: Request, value: PendingToken): void {
  (req as WithPending)[PENDING] = value;
}

/** The pending token, once; afterwards the request only remembers that it carried one. */
export function takePendingToken(req: Request): PendingToken | undefined {
  const value = (req as WithPending)[PENDING];
  if (value) (req as WithPending)[PENDING] = null;
  return value ?? undefined;
}

/** True when the request carried a token credential (verified or not). */
export function isTokenRequest(req: Request): boolean {
  return (req as WithPending)[PENDING] !== undefined;
}
