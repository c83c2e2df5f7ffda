import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TokenRecord } from '../model.js';

/**
 * The seal of a token record: a MAC, under a key derived from the server's pepper, over every
 * field that decides what a token may do (id, owner, scope, expiry, restrictions including its
 * rate limit, upstream credential) and its hash. Someone who can write to the store but does not hold the pepper
 * cannot change any of them, nor graft a hash they know onto another record, without the
 * record failing verification. The name, creator, times of creation and last use are not
 * sealed: they change nothing a token may do.
 */

/** Computes a seal over canonical text: a MAC under a server-side key. */
export type SealFunction = (data: string) => string;

const VERSION = 'v1';
const SEAL_INFO = 'express-api-tokens/seal/v1';

/**
 * A seal function keyed from `pepper` (the key is HMAC(pepper, a fixed label), so the seal
 * key is never the hashing key itself).
 */
export function keyedSeal(pepper: string | Buffer): SealFunction {
  const key = createHmac('sha256', pepper).update(SEAL_INFO).digest();
  return (data) => `${VERSION}.${createHmac('sha256', key).update(data).digest('base64url')}`;
}

/**
 * The seal used when the hasher has no secret (no pepper): keyed from a constant everyone can
 * read in this file, so it catches careless edits and protects against nothing deliberate.
 */
export const PUBLIC_SEAL: SealFunction = keyedSeal('express-api-tokens');

/** The sealed fields of a record, in one canonical text (header names sorted: stores may reorder JSON keys). */
export function sealedText(record: Omit<TokenRecord, 'seal'>): string {
  const headers =
    record.requiredHeaders === null
      ? null
      : Object.entries(record.requiredHeaders).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    VERSION,
    record.id,
    record.user,
    record.scope,
    record.expiresAt,
    record.allowedIps,
    headers,
    record.resources,
    record.upstream,
    record.hash,
    // Appended (not in v1's first list) so a seal written before per-token rate limits existed
    // still reads the same: a record without one seals as before.
    ...(record.rateLimit == null ? [] : [record.rateLimit.requests, record.rateLimit.windowSeconds]),
  ]);
}

/** The seal of `record` as it is now. */
export function sealOf(record: Omit<TokenRecord, 'seal'>, seal: SealFunction): string {
  return seal(sealedText(record));
}

/** How a stored record's seal reads: intact, missing (written before 0.3.0), or not matching. */
export type SealState = 'intact' | 'unsealed' | 'broken';

/** Checks a stored record's seal, in constant time. */
export function checkSeal(record: TokenRecord, seal: SealFunction): SealState {
  if (typeof record.seal !== 'string' || record.seal === '') return 'unsealed';
  const expected = Buffer.from(sealOf(record, seal));
  const actual = Buffer.from(record.seal);
  // Compare same-length buffers either way, so a wrong length costs the same time.
  const same = timingSafeEqual(
    expected,
    actual.length === expected.length ? actual : Buffer.alloc(expected.length),
  );
  return same && actual.length === expected.length ? 'intact' : 'broken';
}

let warned = false;

/**
 * Once per process (not under tests): a gate without a pepper seals records under a public key,
 * so anyone who can write to its store can forge tokens. Said at startup, where it can be fixed.
 */
export function warnPublicSeal(): void {
  if (warned || process.env['NODE_ENV'] === 'test') return;
  warned = true;
  process.emitWarning(
    'express-api-tokens: no `pepper`: anyone who can write to the token store can forge or change tokens. ' +
      'Set `pepper` (a secret kept outside the store); see docs/security.md.',
    { code: 'EAT_NO_PEPPER' },
  );
}
