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

const pending = new WeakMap<Request, PendingToken>();

export function setPendingToken(req: Request, value: PendingToken): void {
  pending.set(req, value);
}

export function takePendingToken(req: Request): PendingToken | undefined {
  const value = pending.get(req);
  pending.delete(req);
  return value;
}

/** True when the request carried a token credential (verified or not). */
const tokenRequests = new WeakSet<Request>();

export function markTokenRequest(req: Request): void {
  tokenRequests.add(req);
}

export function isTokenRequest(req: Request): boolean {
  return tokenRequests.has(req);
}
