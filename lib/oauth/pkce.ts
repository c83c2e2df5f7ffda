import { createHash, timingSafeEqual } from 'node:crypto';

/** A `code_challenge`: base64url (no padding) of a SHA-256 digest. */
export const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Verifier lengths RFC 7636 allows. Its alphabet is NOT enforced: git-credential-oauth 0.4.2
 * sends standard base64 (`+`, `/`, `=`), and refusing that would break it. Any visible ASCII
 * is taken, and S256 is computed over the verifier exactly as sent.
 */
const VERIFIER = /^[\x21-\x7e]{43,128}$/;

/** True when SHA-256 of `verifier` (as sent) is `challenge`; compared in constant time. */
export function verifierMatches(verifier: string | null, challenge: string): boolean {
  if (verifier === null || !VERIFIER.test(verifier)) return false;
  const computed = Buffer.from(createHash('sha256').update(verifier, 'ascii').digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}
