import { ValidationError } from './errors.js';
import { SCOPES, type Scope } from './model.js';

const CONTROL = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;
export const MAX_NAME_LENGTH = 100;
const MAX_USER_LENGTH = 255;
const MAX_GROUP_LENGTH = 256;
const DAY_MS = 86_400_000;

/** A token name: 1 to 100 characters, no control or bidi-override characters. */
export function validateName(value: unknown, field = 'name'): string {
  if (typeof value !== 'string') throw new ValidationError(field, `\`${field}\` must be a string.`);
  const length = [...value].length;
  if (value.trim().length === 0 || length > MAX_NAME_LENGTH) {
    throw new ValidationError(field, `\`${field}\` must be 1 to ${MAX_NAME_LENGTH} characters.`);
  }
  if (CONTROL.test(value))
    throw new ValidationError(field, `\`${field}\` must not contain control characters.`);
  return value;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function hasAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) < 0x80) return true;
  return false;
}

/**
 * True for a character outside ASCII that some case mapping turns into ASCII (U+212A KELVIN
 * SIGN → `k`, U+017F long s → `S`, U+0131 dotless i → `I`, U+0130 → `i̇`, `ß` → `SS`, the
 * `ﬁ` ligatures, …): the characters that let one name pass for another once folded. Both
 * directions and their round trips are tried, so `ẞ` (→ `ß` → `SS`) counts too.
 */
function foldsIntoAscii(char: string): boolean {
  const lower = char.toLowerCase();
  const upper = char.toUpperCase();
  return hasAscii(lower) || hasAscii(upper) || hasAscii(lower.toUpperCase()) || hasAscii(upper.toLowerCase());
}

/**
 * Why `value` cannot be a user or group name under the one naming rule, or undefined when it
 * can. The rule: Unicode NFC, and no character outside ASCII whose case mapping lands in ASCII.
 * Then two names are one exactly when `foldName` says so, and an ASCII name (`kate`,
 * `bitbucket-admins`) can never be reached by a spelling with other characters.
 */
function nameProblem(value: string): string | undefined {
  if (PRINTABLE_ASCII.test(value)) return undefined;
  if (!value.isWellFormed()) return 'must be valid Unicode';
  if (value.normalize('NFC') !== value) return 'must be in Unicode normalization form C (NFC)';
  for (const char of value) {
    if (char.charCodeAt(0) >= 0x80 && foldsIntoAscii(char))
      return `must not contain U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}, which changes case into ASCII`;
  }
  return undefined;
}

/** True when a name (already stored, say) follows the naming rule; cheap for ASCII names. */
export function followsNamingRule(name: string): boolean {
  return PRINTABLE_ASCII.test(name) || nameProblem(name) === undefined;
}

/**
 * The one case folding of user and group names, used by every comparison and store key: the
 * name lower-cased as Bitbucket does (Unicode lower case). A name that breaks the naming rule
 * is never folded, so no stored or cached key of a valid name can be reached through it.
 */
export function foldName(name: string): string {
  return followsNamingRule(name) ? name.toLowerCase() : name;
}

/**
 * A user name as Bitbucket knows it. A colon cannot travel in Basic auth, control characters
 * and surrounding spaces are never meant; the naming rule (NFC, no character that changes case
 * into ASCII: see `nameProblem`) keeps one user to one spelling. Everything else is kept.
 */
export function validateUser(value: unknown, field = 'user'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_USER_LENGTH) {
    throw new ValidationError(
      field,
      `\`${field}\` must be a user name of 1 to ${MAX_USER_LENGTH} characters.`,
    );
  }
  if (value.includes(':') || CONTROL.test(value) || value.trim() !== value || !value.isWellFormed()) {
    throw new ValidationError(
      field,
      `\`${field}\` must not contain a colon, control characters or surrounding spaces.`,
    );
  }
  const problem = nameProblem(value);
  if (problem !== undefined) throw new ValidationError(field, `\`${field}\` ${problem}.`);
  return value;
}

/** True when `value` passes `validateUser`. */
export function isUserName(value: unknown): value is string {
  try {
    validateUser(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * A group name (from a groups claim, a resolver, the `groups` map or a `permissions` list):
 * 1 to 256 characters, no control characters, and the naming rule of user names.
 */
export function groupNameProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_GROUP_LENGTH)
    return `must be a group name of 1 to ${MAX_GROUP_LENGTH} characters`;
  if (CONTROL.test(value)) return 'must not contain control characters';
  return nameProblem(value);
}

/** Bitbucket user names are case-insensitive: the one comparison every part of the library uses. */
export function sameUser(a: string, b: string): boolean {
  return a === b || foldName(a) === foldName(b);
}

export function validateScope(value: unknown, field = 'scope'): Scope {
  if (typeof value !== 'string' || !SCOPES.includes(value as Scope)) {
    throw new ValidationError(field, `\`${field}\` must be 'read' or 'write'.`);
  }
  return value as Scope;
}

const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-](\d{2}):(\d{2})))?$/;

/** Milliseconds of an ISO 8601 string, or NaN when the text or the date it names does not exist. */
function isoMs(text: string): number {
  const m = ISO_INSTANT.exec(text);
  if (m === null) return Number.NaN;
  const [year, month, day, hour = 0, minute = 0, second = 0] = m.slice(1, 7).map((p) => Number(p ?? 0));
  const offsetHours = Number(m[9] ?? 0);
  const offsetMinutes = Number(m[10] ?? 0);
  // Date.UTC rolls 30 February over to March; a date that does not exist must be refused instead.
  const probe = new Date(Date.UTC(year!, month! - 1, day!));
  if (
    probe.getUTCFullYear() !== year ||
    probe.getUTCMonth() !== month! - 1 ||
    probe.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59 ||
    offsetHours > 23 ||
    offsetMinutes > 59
  ) {
    return Number.NaN;
  }
  return Date.parse(text);
}

/**
 * An instant from a Date or an ISO 8601 string (a date alone, or a date and time with a time
 * zone); null when absent. Dates that do not exist (`2030-02-30`) are refused, never rolled over.
 */
export function parseInstant(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null;
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? isoMs(value) : Number.NaN;
  if (!Number.isFinite(ms))
    throw new ValidationError(
      field,
      `\`${field}\` must be an ISO 8601 date that exists, e.g. 2030-01-31T00:00:00Z.`,
    );
  return ms;
}

export function daysToMs(days: number): number {
  return days * DAY_MS;
}

/** Validates a day count for options (`expiry.defaultDays`, …) and bodies (`expiresInDays`). */
export function isDayCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 36_500;
}
