import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * Token string: `<prefix>_<id><secret><checksum>`, all base62 after the underscore.
 * - id: 11 chars (65 random bits), the public lookup key.
 * - secret: 43 chars (256 random bits), only ever stored hashed.
 * - checksum: 6 chars, CRC32 of everything before it, so typos and garbage are refused
 *   without touching the store.
 * Letters, digits and one underscore: URL- and Basic-auth-safe, selected whole by a double click.
 */
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const ID_LENGTH = 11;
export const SECRET_LENGTH = 43;
const CHECKSUM_LENGTH = 6;
const BODY_LENGTH = ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH;
/** Characters after `<prefix>_`: id, secret and checksum (what secret scanners look for). */
export const TOKEN_BODY_LENGTH = BODY_LENGTH;
const PREFIX_PATTERN = /^[a-z][a-z0-9]{0,15}$/;
const ID_PATTERN = /^[0-9A-Za-z]{11}$/;
const BASE62 = /^[0-9A-Za-z]+$/;

export interface ParsedToken {
  id: string;
  secret: string;
}

/** Throws a TypeError naming `tokenPrefix` when the prefix cannot be used. */
export function assertTokenPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new TypeError(
      `\`tokenPrefix\` must be 1 to 16 lowercase letters or digits starting with a letter, got ${JSON.stringify(prefix)}`,
    );
  }
}

/** True for a syntactically valid token id (the only ids that may reach a store). */
export function isTokenId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

/** Uniform base62 characters by rejection sampling (no modulo bias). */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function checksum(text: string): string {
  let value = crc32(text);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

/** Generates a fresh token string with its id and secret. */
export function generateToken(prefix: string): { token: string; id: string; secret: string } {
  const id = randomBase62(ID_LENGTH);
  const secret = randomBase62(SECRET_LENGTH);
  return { token: assembleToken(prefix, id, secret), id, secret };
}

/** The token string of an id and a secret, checksum appended. */
export function assembleToken(prefix: string, id: string, secret: string): string {
  const head = `${prefix}_${id}${secret}`;
  return head + checksum(head);
}

const resemblances = new Map<string, RegExp>();

/**
 * True when the string is, or holds, something meant as a token of this prefix, even a broken
 * one: the prefix in any letter case after optional spaces, or a token-shaped run anywhere.
 * Such a credential is judged as a token (and refused if malformed), never used as a password.
 */
export function looksLikeToken(value: string, prefix: string): boolean {
  let pattern = resemblances.get(prefix);
  if (pattern === undefined) {
    pattern = new RegExp(`^\\s*${prefix}_|${prefix}_[0-9a-z]{20}`, 'i');
    resemblances.set(prefix, pattern);
  }
  return pattern.test(value);
}

/**
 * Splits a token string, or returns null when it is malformed or its checksum is wrong.
 * Costs no store access and no hashing.
 */
export function parseToken(value: string, prefix: string): ParsedToken | null {
  const bodyStart = prefix.length + 1;
  if (value.length !== bodyStart + BODY_LENGTH || !value.startsWith(`${prefix}_`)) return null;
  const body = value.slice(bodyStart);
  if (!BASE62.test(body)) return null;
  const head = value.slice(0, value.length - CHECKSUM_LENGTH);
  if (checksum(head) !== value.slice(-CHECKSUM_LENGTH)) return null;
  return { id: body.slice(0, ID_LENGTH), secret: body.slice(ID_LENGTH, ID_LENGTH + SECRET_LENGTH) };
}
