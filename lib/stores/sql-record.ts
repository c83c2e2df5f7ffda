import { StoreError } from '../errors.js';
import { SCOPES, type Scope, type TokenChanges, type TokenOrigin, type TokenRecord } from '../model.js';
import type { TokenQuery } from './token-store.js';

/**
 * How the SQL stores (SQLite, PostgreSQL) map a record to one row. `user_key` and `name_key`
 * hold the lower-cased user and name, lowered here in JavaScript, so every store matches names
 * exactly as `matchesQuery` does (a database's own `lower()` differs on non-ASCII letters).
 */
export const TOKEN_COLUMNS = [
  'id',
  'user_name',
  'user_key',
  'name',
  'name_key',
  'scope',
  'hash',
  'created_at',
  'created_by',
  'expires_at',
  'last_used_at',
  'last_used_ip',
  'allowed_ips',
  'required_headers',
  'resources',
  'upstream',
  'seal',
  'origin',
] as const;

export type SqlValue = string | number | null;

const json = (value: unknown): string | null => (value === null ? null : JSON.stringify(value));

/** The row values of a record, in `TOKEN_COLUMNS` order. */
export function toRow(record: TokenRecord): SqlValue[] {
  return [
    record.id,
    record.user,
    record.user.toLowerCase(),
    record.name,
    record.name.toLowerCase(),
    record.scope,
    record.hash,
    record.createdAt,
    record.createdBy,
    record.expiresAt,
    record.lastUsedAt,
    record.lastUsedIp,
    json(record.allowedIps),
    json(record.requiredHeaders),
    json(record.resources),
    record.upstream,
    record.seal ?? null,
    json(record.origin ?? null),
  ];
}

/** Column/value pairs for `TokenStore.update`. */
export function changedColumns(changes: TokenChanges): Array<[string, SqlValue]> {
  const columns: Array<[string, SqlValue]> = [];
  if (changes.name !== undefined)
    columns.push(['name', changes.name], ['name_key', changes.name.toLowerCase()]);
  if (changes.expiresAt !== undefined) columns.push(['expires_at', changes.expiresAt]);
  if (changes.allowedIps !== undefined) columns.push(['allowed_ips', json(changes.allowedIps)]);
  if (changes.requiredHeaders !== undefined)
    columns.push(['required_headers', json(changes.requiredHeaders)]);
  if (changes.resources !== undefined) columns.push(['resources', json(changes.resources)]);
  if (changes.upstream !== undefined) columns.push(['upstream', changes.upstream]);
  if (changes.seal !== undefined) columns.push(['seal', changes.seal]);
  return columns;
}

const corrupt = (cause?: unknown) =>
  new StoreError('A token record in the database is corrupt.', cause === undefined ? undefined : { cause });

const optionalNumber = (value: unknown) => (value === null || value === undefined ? null : Number(value));

function optionalJson(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'object') return value; // PostgreSQL jsonb arrives parsed
  try {
    return JSON.parse(String(value));
  } catch (err) {
    throw corrupt(err);
  }
}

/** A row (with `TOKEN_COLUMNS`; PostgreSQL `bigint`s arrive as strings) back to a record. */
export function fromRow(row: Record<string, unknown>): TokenRecord {
  const scope = row['scope'] as Scope;
  const createdAt = Number(row['created_at']);
  if (typeof row['id'] !== 'string' || !SCOPES.includes(scope) || !Number.isFinite(createdAt))
    throw corrupt();
  return {
    id: row['id'],
    user: String(row['user_name']),
    name: String(row['name']),
    scope,
    hash: String(row['hash']),
    createdAt,
    createdBy: String(row['created_by']),
    expiresAt: optionalNumber(row['expires_at']),
    lastUsedAt: optionalNumber(row['last_used_at']),
    lastUsedIp: (row['last_used_ip'] as string | null) ?? null,
    allowedIps: optionalJson(row['allowed_ips']) as string[] | null,
    requiredHeaders: optionalJson(row['required_headers']) as Record<string, string> | null,
    resources: optionalJson(row['resources']) as string[] | null,
    upstream: (row['upstream'] as string | null) ?? null,
    ...(typeof row['seal'] === 'string' ? { seal: row['seal'] } : {}),
    origin: optionalJson(row['origin']) as TokenOrigin | null,
  };
}

/** How a dialect writes a placeholder and a literal substring test. */
export interface SqlDialect {
  placeholder(index: number): string;
  contains(column: string, placeholder: string): string;
}

/**
 * The token manager's filters as a WHERE clause over live rows, with its parameters; the
 * same meaning as `matchesQuery`. `now` decides what is live.
 */
export function searchWhere(
  query: TokenQuery,
  now: number,
  dialect: SqlDialect,
): { where: string; params: SqlValue[] } {
  const params: SqlValue[] = [];
  const param = (value: SqlValue) => {
    params.push(value);
    return dialect.placeholder(params.length);
  };
  const clauses = [`(expires_at IS NULL OR expires_at > ${param(now)})`];
  if (query.user !== undefined) clauses.push(`user_key = ${param(query.user.toLowerCase())}`);
  if (query.name !== undefined) clauses.push(dialect.contains('name_key', param(query.name.toLowerCase())));
  if (query.scope !== undefined) clauses.push(`scope = ${param(query.scope)}`);
  if (query.createdAfter !== undefined) clauses.push(`created_at > ${param(query.createdAfter)}`);
  if (query.expiresBefore !== undefined)
    clauses.push(`(expires_at IS NOT NULL AND expires_at < ${param(query.expiresBefore)})`);
  if (query.lastUsedBefore !== undefined)
    clauses.push(`(last_used_at IS NULL OR last_used_at < ${param(query.lastUsedBefore)})`);
  if (query.restricted === true) clauses.push(RESTRICTED);
  if (query.restricted === false) clauses.push(`NOT ${RESTRICTED}`);
  return { where: clauses.join(' AND '), params };
}

/** A row with any restriction; the SQL stores index it (partial index) for the token manager. */
export const RESTRICTED =
  '(allowed_ips IS NOT NULL OR required_headers IS NOT NULL OR resources IS NOT NULL)';

/** An SQL identifier part: letters, digits and underscores, not starting with a digit. */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Double-quotes an identifier already checked against `IDENTIFIER`. */
export const quote = (identifier: string) => `"${identifier}"`;
