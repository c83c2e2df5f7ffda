import type { TokenRecord, TokenRestrictions } from '../model.js';
import { sameUser } from '../validate.js';
import type { TokenQuery } from './token-store.js';

/** True while a record is live: it never expires, or its expiry is still ahead. */
export function isLive(record: Pick<TokenRecord, 'expiresAt'>, now: number): boolean {
  return record.expiresAt === null || record.expiresAt > now;
}

/** True when a token carries any restriction (an empty list is a restriction too: it admits nothing). */
export function isRestricted(record: TokenRestrictions): boolean {
  return record.allowedIps !== null || record.requiredHeaders !== null || record.resources !== null;
}

/** The token manager's filters, shared by every store so they all mean the same thing. */
export function matchesQuery(record: TokenRecord, query: TokenQuery): boolean {
  if (query.user !== undefined && !sameUser(record.user, query.user)) return false;
  if (query.name !== undefined && !record.name.toLowerCase().includes(query.name.toLowerCase())) return false;
  if (query.scope !== undefined && record.scope !== query.scope) return false;
  if (query.createdAfter !== undefined && record.createdAt <= query.createdAfter) return false;
  if (
    query.expiresBefore !== undefined &&
    (record.expiresAt === null || record.expiresAt >= query.expiresBefore)
  ) {
    return false;
  }
  if (
    query.lastUsedBefore !== undefined &&
    record.lastUsedAt !== null &&
    record.lastUsedAt >= query.lastUsedBefore
  ) {
    return false;
  }
  if (query.restricted !== undefined && isRestricted(record) !== query.restricted) return false;
  return true;
}
