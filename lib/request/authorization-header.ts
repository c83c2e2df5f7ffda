import type { Request } from 'express';
import { AuthenticationError, BadRequestError, type TokenGateError } from '../errors.js';
import { looksLikeToken } from '../tokens/format.js';
import { spellingsOf } from './header-rewrite.js';

/** What an `Authorization` header holds. */
export type Credentials =
  | { kind: 'none' }
  | { kind: 'token'; token: string; claimedUser?: string }
  | { kind: 'password'; user: string; password: string }
  | { kind: 'invalid'; error: TokenGateError };

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const CONTROL = /\p{Cc}/u;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const MAX_HEADER = 8_192;

const NONE: Credentials = Object.freeze({ kind: 'none' });

const malformed = (message: string) => new BadRequestError('CREDENTIALS_MALFORMED', message);

const isAuthorization = spellingsOf(['authorization']);

/** Counts `Authorization` lines: Node keeps only the first in `req.headers`. */
function authorizationLines(req: Request): number {
  let count = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (isAuthorization(raw[i]!)) count++;
  return count;
}

/**
 * Reads `Bearer <token>` or `Basic base64(user:secret)`, strictly: two headers, bad base64,
 * a scheme with no value or trailing junk are malformed, never guessed at. Anything that looks
 * like one of our tokens, in either part of a Basic credential, is a token attempt — judged as
 * a token (and refused if malformed), never a password that could travel upstream or reach an
 * event. A token in the query string is never a credential.
 */
export function parseAuthorization(req: Request, prefix: string): Credentials {
  const header = req.headers.authorization;
  if (header === undefined) return NONE;
  if (authorizationLines(req) > 1)
    return { kind: 'invalid', error: malformed('Send one Authorization header, not several.') };
  if (header.length > MAX_HEADER)
    return { kind: 'invalid', error: malformed('The Authorization header is too long.') };
  const space = header.indexOf(' ');
  // The usual spelling needs no lower-casing (one string fewer per request).
  const scheme = header.startsWith('Bearer ')
    ? 'bearer'
    : (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const value = space < 0 ? '' : header.slice(space + 1).trim();
  if (scheme === 'bearer') {
    if (!TOKEN68.test(value))
      return { kind: 'invalid', error: malformed('The Bearer credential is malformed.') };
    return { kind: 'token', token: value };
  }
  if (scheme !== 'basic') {
    return {
      kind: 'invalid',
      error: new AuthenticationError(
        'CREDENTIALS_UNSUPPORTED',
        'Use Basic or Bearer authentication with an API token.',
      ),
    };
  }
  if (!BASE64.test(value) || value.length === 0) {
    return { kind: 'invalid', error: malformed('The Basic credential is not valid base64.') };
  }
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(value, 'base64'));
  } catch {
    return { kind: 'invalid', error: malformed('The Basic credential is not valid UTF-8.') };
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return { kind: 'invalid', error: malformed('The Basic credential must be user:token.') };
  const user = decoded.slice(0, colon);
  const secret = decoded.slice(colon + 1);
  if (CONTROL.test(decoded))
    return { kind: 'invalid', error: malformed('The Basic credential holds control characters.') };
  if (looksLikeToken(secret, prefix)) return { kind: 'token', token: secret, claimedUser: user };
  // Some clients send the token as the user name (password empty or a filler such as
  // `x-oauth-basic`). Never forward a token-shaped user name upstream as a password login.
  if (looksLikeToken(user, prefix)) return { kind: 'token', token: user };
  return { kind: 'password', user, password: secret };
}
