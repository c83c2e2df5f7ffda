import { createHash } from 'node:crypto';
import type { RateLimit } from '../model.js';

/**
 * The RateLimit header fields of the IETF httpapi draft (draft-ietf-httpapi-ratelimit-headers-08),
 * written as express-rate-limit writes them with `standardHeaders: 'draft-8'`:
 *
 *     RateLimit-Policy: "token"; q=600; w=60; pk=:MmI4YzE0ZjM1YjQy:
 *     RateLimit: "token"; r=599; t=42
 *
 * One list member per limit that applies (`token`, `user`). The partition key is a hash of the
 * token id or the user name (never the token), so a client can tell its partitions apart.
 */

/** express-rate-limit's partition key: the first 12 hex digits of SHA-256, as a byte sequence. */
function partitionKey(key: string): string {
  const hex = createHash('sha256').update(key).digest('hex').slice(0, 12);
  return Buffer.from(hex).toString('base64');
}

/** One member of `RateLimit-Policy`, computed once per token (it does not change per request). */
export function policyMember(name: 'token' | 'user', limit: RateLimit, key: string): string {
  return `"${name}"; q=${limit.requests}; w=${limit.windowSeconds}; pk=:${partitionKey(key)}:`;
}

/** Whole seconds until `resetAt`, at least 1 while the window lasts (Retry-After and `t`). */
export function secondsUntil(resetAt: number, now: number): number {
  return Math.max(1, Math.ceil((resetAt - now) / 1000));
}

/** One member of `RateLimit`: the requests left and the seconds until the window ends. */
export function rateLimitMember(
  name: 'token' | 'user',
  remaining: number,
  resetAt: number,
  now: number,
): string {
  return `"${name}"; r=${remaining}; t=${secondsUntil(resetAt, now)}`;
}
