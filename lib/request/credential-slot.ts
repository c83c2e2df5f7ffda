import type { Request } from 'express';
import type { TokenRecord } from '../model.js';

/**
 * A token credential on its way through the request path, under a symbol rather than a named
 * property, so it stays out of `JSON.stringify(req)`: the raw token from `extractCredentials`
 * until `authenticateToken` takes it, then the verified record (with its hash and upstream
 * credential, which never go on `req.auth`) for the steps after it.
 */
export interface PendingToken {
  token: string;
  /** The Basic user part, when the token came as a Basic password. */
  claimedUser?: string;
}

const SLOT = Symbol('express-api-tokens.token');

type Slot = PendingToken | { verified: TokenRecord } | null;
type WithSlot = Request & { [SLOT]?: Slot };

export function setPendingToken(req: Request, value: PendingToken): void {
  (req as WithSlot)[SLOT] = value;
}

/** The pending token, once; afterwards the request only remembers that it carried one. */
export function takePendingToken(req: Request): PendingToken | undefined {
  const value = (req as WithSlot)[SLOT];
  if (value === undefined || value === null || 'verified' in value) return undefined;
  (req as WithSlot)[SLOT] = null;
  return value;
}

/** Keeps the verified record for the steps after authentication. */
export function setVerifiedRecord(req: Request, record: TokenRecord): void {
  (req as WithSlot)[SLOT] = { verified: record };
}

/** The verified record, when `authenticateToken` passed this request. */
export function verifiedRecord(req: Request): TokenRecord | undefined {
  const value = (req as WithSlot)[SLOT];
  return value !== undefined && value !== null && 'verified' in value ? value.verified : undefined;
}

/** True when the request carried a token credential (verified or not). */
export function isTokenRequest(req: Request): boolean {
  return (req as WithSlot)[SLOT] !== undefined;
}
