import type { Request } from 'express';
import { ForbiddenError, ValidationError } from '../errors.js';
import type { TokenQuery } from '../stores/token-store.js';
import { isDayCount, parseInstant, sameUser, validateScope, validateUser } from '../validate.js';
import type { Caller } from './management-context.js';

/**
 * Reading management inputs (JSON bodies, query strings, form fields): strict, every mistake a
 * 400 naming the field. Shared by the management API and the token pages.
 */

export function jsonBody(req: Request): Record<string, unknown> {
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !req.is('application/json')) {
    throw new ValidationError('body', 'Send a JSON object with Content-Type: application/json.');
  }
  return body as Record<string, unknown>;
}

export function refuseUnknownFields(body: Record<string, unknown>, allowed: ReadonlySet<string>): void {
  for (const key of Object.keys(body)) {
    if (!allowed.has(key)) throw new ValidationError(key, `Unknown field \`${key}\`.`);
  }
}

export function queryString(req: Request, name: string): string | undefined {
  const value = (req.query as Record<string, unknown>)[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ValidationError(name, `\`${name}\` must be given once.`);
  return value;
}

export function queryInteger(req: Request, name: string, fallback: number, min: number, max: number): number {
  const value = queryString(req, name);
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ValidationError(name, `\`${name}\` must be a whole number from ${min} to ${max}.`);
  }
  return Number(value);
}

/**
 * An expiry from `expiresInDays` or `expiresAt` (not both), as an instant; null for the
 * policy's default. Beyond `maxDays` is a 400 naming the field.
 */
export function requestedExpiry(
  expiresInDays: unknown,
  expiresAt: unknown,
  maxDays: number | undefined,
  now = Date.now(),
): number | null {
  if (expiresInDays !== undefined && expiresAt !== undefined)
    throw new ValidationError('expiresInDays', 'Give `expiresInDays` or `expiresAt`, not both.');
  if (expiresInDays !== undefined) {
    if (!isDayCount(expiresInDays))
      throw new ValidationError('expiresInDays', '`expiresInDays` must be a whole number of days.');
    if (maxDays !== undefined && expiresInDays > maxDays)
      throw new ValidationError('expiresInDays', `\`expiresInDays\` may be at most ${maxDays}.`);
    return now + expiresInDays * 86_400_000;
  }
  return parseInstant(expiresAt, 'expiresAt');
}

export const DEFAULT_LIMIT = 25;
export const MAX_LIMIT = 1_000;

/**
 * The token manager's query from `?user=&all=&name=&scope=&restricted=&expiresBefore=&…`:
 * the caller's own tokens unless `all=true` or `user=` (both need `manageOthers`).
 */
export function tokenQueryOf(req: Request, caller: Caller): TokenQuery {
  const user = queryString(req, 'user') || undefined;
  const everyone = queryString(req, 'all') === 'true';
  if (user !== undefined) validateUser(user);
  if ((everyone || (user !== undefined && !sameUser(user, caller.name))) && !caller.manager) {
    throw new ForbiddenError('PERMISSION_DENIED', 'You may only list your own API tokens.');
  }
  const query: TokenQuery = {
    start: queryInteger(req, 'start', 0, 0, 1e9),
    limit: queryInteger(req, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT),
  };
  if (!everyone || user !== undefined) query.user = user ?? caller.name;
  const name = queryString(req, 'name');
  if (name) query.name = name;
  const scope = queryString(req, 'scope');
  if (scope) query.scope = validateScope(scope);
  const restricted = queryString(req, 'restricted');
  if (restricted === 'true' || restricted === 'false') query.restricted = restricted === 'true';
  else if (restricted) throw new ValidationError('restricted', '`restricted` must be true or false.');
  for (const field of ['expiresBefore', 'lastUsedBefore', 'createdAfter'] as const) {
    const value = parseInstant(queryString(req, field) || undefined, field);
    if (value !== null) query[field] = value;
  }
  return query;
}
