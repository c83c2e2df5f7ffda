import { sameUser } from '../internal/validate.js';
import type { TokenQuery, TokenRecord } from './token-store.js';

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
  return true;
}
