import { canonicalIpEntry } from '../client-address/ip-list.js';
import { ValidationError } from '../errors.js';
import { isHeaderName } from '../internal/options.js';
import type { RateLimit, TokenRestrictions } from '../model.js';
import { parseResourcePattern, resourcePatternText } from './resource-pattern.js';

/**
 * Restrictions as callers give them: each may be omitted (unchanged / none) or null (none).
 * @example
 * const restrictions: RestrictionsInput = { allowedIps: ['10.20.0.0/16'], resources: ['OPS/deploy'] };
 * await gate.tokens.create({ user: 'ci-bot', name: 'deploy', scope: 'write', ...restrictions });
 * await gate.tokens.update(id, { allowedIps: null }); // lifts the address restriction
 */
export interface RestrictionsInput {
  /** Addresses, CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`) and `first-last` ranges. */
  allowedIps?: readonly string[] | null;
  /** Headers every request must carry with exactly this value, e.g. `{ 'X-CI-Runner': 'build-7' }`. */
  requiredHeaders?: Readonly<Record<string, string>> | null;
  /** Projects and repositories: `PROJ`, `PROJ/repo`, `~user/repo`, `*` inside a segment. */
  resources?: readonly string[] | null;
  /** The token's own rate limit, e.g. `{ requests: 600, windowSeconds: 60 }`; at most the gate's `rateLimit.maxPerToken`. */
  rateLimit?: RateLimit | null;
}

const MAX_ENTRIES = 100;
const MAX_HEADERS = 20;
const HEADER_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]{0,1022}[\x21-\x7e])?$/;
/** Headers that carry credentials or framing: requiring them would mean nothing or break requests. */
const RESERVED_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'upgrade',
  'te',
  'trailer',
  'keep-alive',
]);
/**
 * Tokens by RFC 9110 that are names of JavaScript's object machinery: `out['__proto__'] = v`
 * would set a prototype instead of a header, leaving a token "restricted" by nothing.
 */
const OBJECT_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function list(value: unknown, field: string, what: string): readonly unknown[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_ENTRIES)
    throw new ValidationError(field, `\`${field}\` must be a list of 1 to ${MAX_ENTRIES} ${what}, or null.`);
  return value;
}

function allowedIps(value: unknown): string[] {
  const entries = list(value, 'allowedIps', 'addresses or ranges').map((entry, i) => {
    const field = `allowedIps[${i}]`;
    if (typeof entry !== 'string') throw new ValidationError(field, `\`${field}\` must be a string.`);
    try {
      return canonicalIpEntry(entry);
    } catch (err) {
      throw new ValidationError(field, `\`${field}\`: ${(err as Error).message}.`);
    }
  });
  return [...new Set(entries)];
}

function requiredHeaders(value: unknown): Record<string, string> {
  const field = 'requiredHeaders';
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ValidationError(field, `\`${field}\` must be an object of header name → value, or null.`);
  const entries = Object.entries(value);
  if (entries.length === 0 || entries.length > MAX_HEADERS)
    throw new ValidationError(field, `\`${field}\` must name 1 to ${MAX_HEADERS} headers.`);
  const out: Record<string, string> = {};
  for (const [name, headerValue] of entries) {
    const lower = name.toLowerCase();
    const path = `${field}.${name}`;
    if (
      !isHeaderName(name) ||
      RESERVED_HEADERS.has(lower) ||
      OBJECT_KEYS.has(lower) ||
      Object.hasOwn(out, lower)
    )
      throw new ValidationError(path, `\`${path}\` is not a header name a token can require.`);
    if (typeof headerValue !== 'string' || !HEADER_VALUE.test(headerValue))
      throw new ValidationError(
        path,
        `\`${path}\` must be 1 to 1024 printable ASCII characters without surrounding spaces.`,
      );
    out[lower] = headerValue;
  }
  return out;
}

function resources(value: unknown): string[] {
  const patterns = list(value, 'resources', 'project or repository patterns').map((entry, i) => {
    const field = `resources[${i}]`;
    if (typeof entry !== 'string') throw new ValidationError(field, `\`${field}\` must be a string.`);
    try {
      return resourcePatternText(parseResourcePattern(entry));
    } catch (err) {
      throw new ValidationError(field, `\`${field}\` ${(err as Error).message}.`);
    }
  });
  return [...new Set(patterns)];
}

const MAX_REQUESTS = 1_000_000_000;
const MAX_WINDOW_SECONDS = 86_400;

const wholeNumber = (value: unknown, min: number, max: number): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;

/**
 * True when `limit` allows no more than `max`: never more requests in one window, and never a
 * higher average rate (so a longer window cannot hide a bigger burst).
 */
export function withinRateLimit(limit: RateLimit, max: RateLimit): boolean {
  return (
    limit.requests <= max.requests && limit.requests * max.windowSeconds <= max.requests * limit.windowSeconds
  );
}

/** Checks a rate limit's shape (options and restrictions alike); the message names `field`. */
export function rateLimitProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return 'must be { requests, windowSeconds }';
  const keys = Object.keys(value);
  const { requests, windowSeconds } = value as Record<string, unknown>;
  if (
    keys.length !== 2 ||
    !wholeNumber(requests, 1, MAX_REQUESTS) ||
    !wholeNumber(windowSeconds, 1, MAX_WINDOW_SECONDS)
  )
    return `must be { requests, windowSeconds }: whole numbers, requests from 1 to ${MAX_REQUESTS.toLocaleString('en')}, windowSeconds from 1 to ${MAX_WINDOW_SECONDS.toLocaleString('en')}`;
  return undefined;
}

/** `requests/seconds` (`600/60`), as the token pages and the CLI take a rate limit; checked on create/update. */
export function parseRateLimitText(text: string): RateLimit {
  const match = /^(\d{1,10})\s*\/\s*(\d{1,6})\s*s?$/.exec(text.trim());
  if (match === null)
    throw new ValidationError('rateLimit', 'Write the rate limit as requests / seconds, e.g. 600/60.');
  return { requests: Number(match[1]), windowSeconds: Number(match[2]) };
}

function rateLimit(value: unknown, max: RateLimit | undefined): RateLimit {
  const problem = rateLimitProblem(value);
  if (problem !== undefined) throw new ValidationError('rateLimit', `\`rateLimit\` ${problem}, or null.`);
  const { requests, windowSeconds } = value as RateLimit;
  const limit = { requests, windowSeconds };
  if (max !== undefined && !withinRateLimit(limit, max))
    throw new ValidationError(
      'rateLimit',
      `\`rateLimit\` may be at most ${max.requests} requests in ${max.windowSeconds} seconds (the administrator's maximum).`,
    );
  return limit;
}

/**
 * Validates and canonicalises the restriction fields present in `input` (absent ones are left
 * out of the result; null clears). Throws a ValidationError naming the field and entry.
 * `maxRateLimit` is the administrator's ceiling for a token's own `rateLimit`.
 */
export function validateRestrictions(
  input: RestrictionsInput,
  maxRateLimit?: RateLimit,
): Partial<TokenRestrictions> {
  const out: { -readonly [K in keyof TokenRestrictions]?: TokenRestrictions[K] } = {};
  if (input.allowedIps !== undefined)
    out.allowedIps = input.allowedIps === null ? null : allowedIps(input.allowedIps);
  if (input.requiredHeaders !== undefined)
    out.requiredHeaders = input.requiredHeaders === null ? null : requiredHeaders(input.requiredHeaders);
  if (input.resources !== undefined)
    out.resources = input.resources === null ? null : resources(input.resources);
  if (input.rateLimit !== undefined)
    out.rateLimit = input.rateLimit === null ? null : rateLimit(input.rateLimit, maxRateLimit);
  return out;
}

/** True when a token carries any restriction. */
export function isRestricted(restrictions: TokenRestrictions): boolean {
  return (
    restrictions.allowedIps !== null ||
    restrictions.requiredHeaders !== null ||
    restrictions.resources !== null
  );
}
