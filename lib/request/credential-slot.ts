import type { Request } from 'express';
import type { TokenRecord } from '../model.js';
import { authOf, CREDENTIAL } from './auth-context.js';

/**
 * A token credential on its way through the request path, under a symbol on `req.auth` rather
 * than a named property, so it stays out of `JSON.stringify`: the raw token from
 * `extractCredentials` until `authenticateToken` takes it, then the verified record (with its
 * hash and upstream credential, which never go on the public `req.auth` fields) for the steps
 * after it.
 */
export interface PendingToken {
  token: string;
  /** The Basic user part, when the token came as a Basic password. */
  claimedUser?: string;
}

/** What the slot holds once the token is verified (the verifier's shared outcome object). */
interface Verified {
  readonly record: TokenRecord;
}

type Slot = PendingToken | Verified | null;
type WithSlot = { [CREDENTIAL]?: Slot };

const slotOf = (req: Request): Slot | undefined => (req.auth as WithSlot | undefined)?.[CREDENTIAL];

export function setPendingToken(req: Request, value: PendingToken): void {
  (authOf(req) as unknown as WithSlot)[CREDENTIAL] = value;
}

/** The pending token, once; afterwards the request only remembers that it carried one. */
export function takePendingToken(req: Request): PendingToken | undefined {
  const value = slotOf(req);
  if (value === undefined || value === null || 'record' in value) return undefined;
  (authOf(req) as unknown as WithSlot)[CREDENTIAL] = null;
  return value;
}

/** Keeps the verification (the verifier's own object, so nothing is allocated) for the steps after it. */
export function setVerified(req: Request, verified: Verified): void {
  (authOf(req) as unknown as WithSlot)[CREDENTIAL] = verified;
}

/** The verified record, when `authenticateToken` passed this request. */
export function verifiedRecord(req: Request): TokenRecord | undefined {
  const value = slotOf(req);
  return value !== undefined && value !== null && 'record' in value ? value.record : undefined;
}

/** True when the request carried a token credential (verified or not). */
export function isTokenRequest(req: Request): boolean {
  return slotOf(req) !== undefined;
}
