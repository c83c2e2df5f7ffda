import type { Response } from 'express';
import type { TokenRecord } from '../model.js';

/** The header that tells scripts when their token dies, as GitHub's `GitHub-Authentication-Token-Expiration`. */
export const TOKEN_EXPIRATION_HEADER = 'API-Token-Expiration';

/** HTTP dates per record: a cached record answers every request with the same string. */
const dates = new WeakMap<TokenRecord, string>();

/**
 * Sets `API-Token-Expiration` (an HTTP date) on the response to a request that passed with a
 * token that expires, so a CI job can warn before the token dies instead of failing with 401.
 */
export function setTokenExpiration(res: Response, record: TokenRecord): void {
  const expiresAt = record.expiresAt;
  if (expiresAt === null) return;
  let date = dates.get(record);
  if (date === undefined) {
    date = new Date(expiresAt).toUTCString();
    dates.set(record, date);
  }
  res.setHeader(TOKEN_EXPIRATION_HEADER, date);
}
