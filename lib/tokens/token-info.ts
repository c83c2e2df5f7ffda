import type { TokenInfo, TokenRecord } from '../model.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const frozen = <T>(value: T | null): T | null =>
  value === null ? null : Object.freeze(structuredClone(value));

const infos = new WeakMap<TokenRecord, TokenInfo>();

/**
 * The public view of a record: no hash, ISO times, frozen (callers share it: a cached record
 * hands the same object to every request). Memoised per record.
 */
export function toTokenInfo(record: TokenRecord): TokenInfo {
  const known = infos.get(record);
  if (known !== undefined) return known;
  const info: TokenInfo = Object.freeze({
    id: record.id,
    user: record.user,
    name: record.name,
    scope: record.scope,
    createdAt: new Date(record.createdAt).toISOString(),
    createdBy: record.createdBy,
    expiresAt: iso(record.expiresAt),
    lastUsedAt: iso(record.lastUsedAt),
    lastUsedIp: record.lastUsedIp,
    allowedIps: frozen(record.allowedIps),
    requiredHeaders: frozen(record.requiredHeaders),
    resources: frozen(record.resources),
    origin: frozen(record.origin ?? null),
  });
  infos.set(record, info);
  return info;
}
