import type { TokenRecord } from '../model.js';
import { type AuthContext, CREDENTIAL } from './auth-context.js';

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

const slotOf = (auth: AuthContext | undefined): Slot | undefined =>
  (auth as WithSlot | undefined)?.[CREDENTIAL];

export function setPendingToken(auth: AuthContext, value: PendingToken): void {
  (auth as WithSlot)[CREDENTIAL] = value;
}

/** The pending token, once; afterwards the request only remembers that it carried one. */
export function takePendingToken(auth: AuthContext): PendingToken | undefined {
  const value = slotOf(auth);
  if (value === undefined || value === null || 'record' in value) return undefined;
  (auth as WithSlot)[CREDENTIAL] = null;
  return value;
}

/** Keeps the verification (the verifier's own object, so nothing is allocated) for the steps after it. */
export function setVerified(auth: AuthContext, verified: Verified): void {
  (auth as WithSlot)[CREDENTIAL] = verified;
}

/** The verified record, when `authenticateToken` passed this request. */
export function verifiedRecord(auth: AuthContext | undefined): TokenRecord | undefined {
  const value = slotOf(auth);
  return value !== undefined && value !== null && 'record' in value ? value.record : undefined;
}

/** True when the request carried a token credential (verified or not). */
export function isTokenRequest(auth: AuthContext | undefined): boolean {
  return slotOf(auth) !== undefined;
}
