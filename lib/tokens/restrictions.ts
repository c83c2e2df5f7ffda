import { ValidationError } from '../errors.js';
import { canonicalIpEntry } from '../internal/ip-list.js';
import { isHeaderName } from '../internal/options.js';
import { parseResourcePattern, resourcePatternText } from '../internal/resource-pattern.js';
import type { TokenRestrictions } from '../model.js';

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

/**
 * Validates and canonicalises the restriction fields present in `input` (absent ones are left
 * out of the result; null clears). Throws a ValidationError naming the field and entry.
 */
export function validateRestrictions(input: RestrictionsInput): Partial<TokenRestrictions> {
  const out: { -readonly [K in keyof TokenRestrictions]?: TokenRestrictions[K] } = {};
  if (input.allowedIps !== undefined)
    out.allowedIps = input.allowedIps === null ? null : allowedIps(input.allowedIps);
  if (input.requiredHeaders !== undefined)
    out.requiredHeaders = input.requiredHeaders === null ? null : requiredHeaders(input.requiredHeaders);
  if (input.resources !== undefined)
    out.resources = input.resources === null ? null : resources(input.resources);
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
