import { StoreError } from '../errors.js';
import type { TokenChanges, TokenRecord } from '../model.js';
import { foldName } from '../validate.js';
import { decodeRecord, encodeChanges, encodeRecord, RECORD_FIELDS } from './record-codec.js';
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
  'rate_limit',
] as const;

export type SqlValue = string | number | null;

const COLUMN_OF = new Map<string, number>(RECORD_FIELDS.map((field, i) => [field.column, i]));
const KEY_COLUMNS = new Set(['id', 'user_key', 'name_key']);
// The column list and the record codec must agree; a column only one of them knows is a bug.
for (const column of TOKEN_COLUMNS)
  if (!KEY_COLUMNS.has(column) && !COLUMN_OF.has(column))
    throw new Error(`No record field for column ${column}`);
if (COLUMN_OF.size + KEY_COLUMNS.size !== TOKEN_COLUMNS.length)
  throw new Error('A record field has no column');

/** The row values of a record, in `TOKEN_COLUMNS` order (the record codec's values plus the key columns). */
export function toRow(record: TokenRecord): SqlValue[] {
  const values = encodeRecord(record);
  return TOKEN_COLUMNS.map((column) => {
    if (column === 'id') return record.id;
    if (column === 'user_key') return foldName(record.user);
    if (column === 'name_key') return record.name.toLowerCase();
    return values[COLUMN_OF.get(column)!]!;
  });
}

/** Column/value pairs for `TokenStore.update`. */
export function changedColumns(changes: TokenChanges): Array<[string, SqlValue]> {
  const columns: Array<[string, SqlValue]> = [];
  for (const [field, value] of encodeChanges(changes)) {
    columns.push([field.column, value]);
    if (field.key === 'name') columns.push(['name_key', String(value).toLowerCase()]);
  }
  return columns;
}

const corrupt = (cause?: unknown) =>
  new StoreError('A token record in the database is corrupt.', cause === undefined ? undefined : { cause });

/** A row (with `TOKEN_COLUMNS`; PostgreSQL `bigint`s arrive as strings) back to a record. */
export function fromRow(row: Record<string, unknown>): TokenRecord {
  const id = row['id'];
  if (typeof id !== 'string') throw corrupt();
  return decodeRecord(id, { read: (field) => row[field.column], blankIsNull: false, corrupt });
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
  if (query.user !== undefined) clauses.push(`user_key = ${param(foldName(query.user))}`);
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
