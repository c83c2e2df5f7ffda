import type { Request } from 'express';

/**
 * A credential waiting for verification, kept off the request object (and so out of any
 * logged or serialised `req`) between `extractCredentials` and `authenticateToken`.
 */
export interface PendingToken {
  token: string;
  /** The Basic user part, when the token came as a Basic password. */
  claimedUser?: string;
}

// One entry per token request: the credential until it is taken, then only the mark.
const pending = new WeakMap<Request, PendingToken | null>();

export function setPendingToken(req: Request, value: PendingToken): void {
  pending.set(req, value);
}

export function takePendingToken(req: Request): PendingToken | undefined {
  const value = pending.get(req);
  if (value) pending.set(req, null);
  return value ?? undefined;
}

/** True when the request carried a token credential (verified or not). */
export function isTokenRequest(req: Request): boolean {
  return pending.has(req);
}
