import type { Request } from 'express';
import { ValidationError } from '../errors.js';
import type { RateLimit } from '../model.js';
import { parseRateLimitText, type RestrictionsInput } from '../tokens/restrictions.js';

/** Longest value of one form field (a textarea of restrictions included). */
const MAX_FIELD = 8_000;

/**
 * The fields of a posted form: each given at most once, each a string, none unknown. Every
 * mistake is a 400 naming the field (what a hand-made request gets; our forms never cause one).
 */
export function formFields(req: Request, allowed: readonly string[]): Record<string, string> {
  const body: unknown = req.body;
  if (!req.is('application/x-www-form-urlencoded') || typeof body !== 'object' || body === null)
    throw new ValidationError('body', 'Send the form as application/x-www-form-urlencoded.');
  const fields: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) {
    if (!allowed.includes(key)) throw new ValidationError(key, `Unknown field \`${key.slice(0, 40)}\`.`);
    if (typeof value !== 'string') throw new ValidationError(key, `\`${key}\` must be given once.`);
    if (value.length > MAX_FIELD) throw new ValidationError(key, `\`${key}\` is too long.`);
    fields[key] = value;
  }
  return fields;
}

/** Entries of a textarea, one per line (commas also separate); undefined when empty. */
export function listField(text: string | undefined): string[] | undefined {
  const entries = (text ?? '')
    .split(/[\r\n,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  return entries.length === 0 ? undefined : entries;
}

/** `Name: value` lines of a textarea; undefined when empty. */
export function headersField(text: string | undefined): Record<string, string> | undefined {
  const lines = (text ?? '')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (lines.length === 0) return undefined;
  // No prototype: a header named `__proto__` is a plain (and then refused) key, never a prototype.
  const headers: Record<string, string> = Object.create(null);
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0)
      throw new ValidationError('requiredHeaders', 'Write each header as `Name: value` on its own line.');
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** `requests/seconds` (e.g. `600/60`) as a rate limit; undefined when empty. */
export function rateLimitField(text: string | undefined): RateLimit | undefined {
  const value = (text ?? '').trim();
  return value === '' ? undefined : parseRateLimitText(value);
}

/**
 * The restriction fields of a form. On create an empty field means "not restricted"; on an
 * update it removes the restriction (null).
 */
export function restrictionsOf(
  fields: Record<string, string>,
  emptyAs: 'absent' | 'null',
): RestrictionsInput {
  const empty = emptyAs === 'null' ? null : undefined;
  const out: Record<string, unknown> = {};
  const ips = listField(fields['allowedIps']) ?? empty;
  const headers = headersField(fields['requiredHeaders']) ?? empty;
  const resources = listField(fields['resources']) ?? empty;
  const rateLimit = rateLimitField(fields['rateLimit']) ?? empty;
  if (ips !== undefined) out['allowedIps'] = ips;
  if (headers !== undefined) out['requiredHeaders'] = headers;
  if (resources !== undefined) out['resources'] = resources;
  if (rateLimit !== undefined) out['rateLimit'] = rateLimit;
  return out as RestrictionsInput;
}
