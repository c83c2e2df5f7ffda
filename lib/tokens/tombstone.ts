import type { TokenRecord } from '../model.js';

/**
 * A revoked token whose upstream credential (access-token mode) could not be deleted yet is put
 * back into the store as a tombstone: already expired, so no live view (`get`, `listByUser`,
 * `search`) ever returns it and no secret can match its hash, but stores that retain expired
 * records (`expiringBetween`) keep it for a day, so the deletion is retried after a restart and
 * by any instance. It is removed once the upstream confirms the deletion.
 */
const TOMBSTONE_HASH = 'tombstone$revoked';

export function tombstoneOf(record: TokenRecord, now: number): TokenRecord {
  return { ...record, hash: TOMBSTONE_HASH, expiresAt: now };
}

/** True for tombstones: expiry reminders skip them (the token was revoked, not expired). */
export function isTombstone(record: TokenRecord): boolean {
  return record.hash === TOMBSTONE_HASH;
}
