import type { StoreError } from '../errors.js';
import { SCOPES, type Scope, type TokenChanges, type TokenRecord } from '../model.js';

/**
 * The one serialisation of a `TokenRecord`, shared by every store: which fields are stored,
 * each one's SQL column (Redis uses the field name), and how its value is written. A field
 * added to `TokenRecord` fails to compile until it is listed here, so no store can drop it.
 */

type StoredKey = Exclude<keyof TokenRecord, 'id'>;
type Kind = 'text' | 'number' | 'optionalNumber' | 'optionalText' | 'json';

interface FieldSpec {
  readonly key: StoredKey;
  readonly column: string;
  readonly kind: Kind;
}

/** Every stored field, in the order records are built (the SQL column order without the key columns). */
export const RECORD_FIELDS = [
  { key: 'user', column: 'user_name', kind: 'text' },
  { key: 'name', column: 'name', kind: 'text' },
  { key: 'scope', column: 'scope', kind: 'text' },
  { key: 'hash', column: 'hash', kind: 'text' },
  { key: 'createdAt', column: 'created_at', kind: 'number' },
  { key: 'createdBy', column: 'created_by', kind: 'text' },
  { key: 'expiresAt', column: 'expires_at', kind: 'optionalNumber' },
  { key: 'lastUsedAt', column: 'last_used_at', kind: 'optionalNumber' },
  { key: 'lastUsedIp', column: 'last_used_ip', kind: 'optionalText' },
  { key: 'allowedIps', column: 'allowed_ips', kind: 'json' },
  { key: 'requiredHeaders', column: 'required_headers', kind: 'json' },
  { key: 'resources', column: 'resources', kind: 'json' },
  { key: 'upstream', column: 'upstream', kind: 'optionalText' },
  // Absent, not null, when there is none: records written before seals existed have none.
  { key: 'seal', column: 'seal', kind: 'optionalText' },
  { key: 'origin', column: 'origin', kind: 'json' },
  { key: 'rateLimit', column: 'rate_limit', kind: 'json' },
] as const satisfies readonly FieldSpec[];

export type RecordField = (typeof RECORD_FIELDS)[number];

// Compile-time: every stored key of TokenRecord has a field above.
type Unlisted = Exclude<StoredKey, RecordField['key']>;
const everyFieldListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyFieldListed;

/** A stored value: text, a number, or null for none (JSON fields as their text). */
export type StoredValue = string | number | null;

function encodeValue(field: RecordField, value: unknown): StoredValue {
  if (value === undefined || value === null) return null;
  return field.kind === 'json' ? JSON.stringify(value) : (value as string | number);
}

/** The stored values of a record, in `RECORD_FIELDS` order. */
export function encodeRecord(record: TokenRecord): StoredValue[] {
  return RECORD_FIELDS.map((field) => encodeValue(field, record[field.key]));
}

/** The fields `changes` sets, with their stored values (null clears). */
export function encodeChanges(changes: TokenChanges): Array<[RecordField, StoredValue]> {
  const out: Array<[RecordField, StoredValue]> = [];
  for (const field of RECORD_FIELDS) {
    const value = (changes as Partial<TokenRecord>)[field.key];
    if (value !== undefined) out.push([field, encodeValue(field, value)]);
  }
  return out;
}

/** How a store hands stored values back. */
export interface DecodeSource {
  /** The stored value of one field (undefined or null when none). */
  read(field: RecordField): unknown;
  /** Redis hashes cannot hold null: there the empty string means none. */
  readonly blankIsNull: boolean;
  /** The error for a value that cannot be a record's. */
  corrupt(cause?: unknown): StoreError;
}

function decodeValue(field: RecordField, raw: unknown, source: DecodeSource): unknown {
  const none = raw === undefined || raw === null || (source.blankIsNull && raw === '');
  switch (field.kind) {
    case 'text':
      return raw === undefined || raw === null ? undefined : String(raw);
    case 'number':
      return Number(raw);
    case 'optionalNumber':
      return none ? null : Number(raw);
    case 'optionalText':
      return none ? null : String(raw);
    case 'json':
      if (none) return null;
      if (typeof raw === 'object') return raw; // PostgreSQL jsonb arrives parsed
      try {
        return JSON.parse(String(raw));
      } catch (err) {
        throw source.corrupt(err);
      }
  }
}

const FIELD_BY_KEY = new Map<string, RecordField>(RECORD_FIELDS.map((field) => [field.key, field]));

/**
 * A record back from its stored values (numbers may arrive as text); throws `corrupt()` on a bad one.
 * Built as one object literal, not field by field: seventeen properties added under computed
 * names put an object in V8's slow dictionary mode, and the request path reads a cached
 * record's fields on every request.
 */
export function decodeRecord(id: string, source: DecodeSource): TokenRecord {
  const get = (key: RecordField['key']): unknown => {
    const field = FIELD_BY_KEY.get(key)!;
    return decodeValue(field, source.read(field), source);
  };
  // In RECORD_FIELDS order (the order values are read and keys listed); `seal` absent when none.
  const user = get('user');
  const name = get('name');
  const scope = get('scope');
  const hash = get('hash');
  const createdAt = get('createdAt');
  const createdBy = get('createdBy');
  const head = { id, user, name: name ?? '', scope, hash, createdAt, createdBy: createdBy ?? user };
  const expiresAt = get('expiresAt');
  const lastUsedAt = get('lastUsedAt');
  const lastUsedIp = get('lastUsedIp');
  const allowedIps = get('allowedIps');
  const requiredHeaders = get('requiredHeaders');
  const resources = get('resources');
  const upstream = get('upstream');
  const seal = get('seal');
  const origin = get('origin');
  const rateLimit = get('rateLimit');
  const record = {
    ...head,
    expiresAt,
    lastUsedAt,
    lastUsedIp,
    allowedIps,
    requiredHeaders,
    resources,
    upstream,
    ...(seal === null ? undefined : { seal }),
    origin,
    rateLimit,
  } satisfies
    | Record<RecordField['key'] | 'id', unknown>
    | Omit<Record<RecordField['key'] | 'id', unknown>, 'seal'>;
  if (typeof user !== 'string') throw source.corrupt();
  if (!SCOPES.includes(scope as Scope) || !Number.isFinite(createdAt as number)) throw source.corrupt();
  return record as unknown as TokenRecord;
}

const JSON_FIELDS = RECORD_FIELDS.filter((field) => field.kind === 'json');

/** A copy whose lists and objects are new too, so a holder cannot edit the stored record (memory). */
export function copyRecord(record: TokenRecord): TokenRecord {
  const copy: Record<string, unknown> = { ...record };
  for (const { key } of JSON_FIELDS) {
    const value = record[key] as unknown;
    copy[key] =
      value === undefined || value === null ? null : Array.isArray(value) ? [...value] : { ...value };
  }
  return copy as unknown as TokenRecord;
}
