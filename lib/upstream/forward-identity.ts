import { createPrivateKey, createSecretKey, type KeyObject } from 'node:crypto';
import type { RequestHandler } from 'express';
import { SignJWT } from 'jose';
import { BoundedCache } from '../internal/bounded-cache.js';
import {
  any,
  headerName as headerNameCheck,
  integer,
  isHeaderName,
  object,
  oneOf,
  type Shape,
  string,
  validateOptions,
} from '../internal/options.js';
import { isTokenRequest } from '../request/credential-slot.js';
import { addHeader, removeHeaders, spellingsOf } from '../request/header-rewrite.js';
import { middlewareOf, type Step } from '../request/step.js';

/**
 * A short-lived signed statement of who the request is, for upstreams that verify it: claims
 * `sub` (the user), `tid` (the token id), `scope`, `iat`, `exp`, and `iss`/`aud` when set.
 * @example
 * const jwt: IdentityJwtOptions = {
 *   key: process.env.JWT_SECRET!,
 *   ttlSeconds: 30,
 *   issuer: 'bitbucket-proxy',
 *   audience: 'bitbucket',
 * };
 * createTokenGate({ identity: { jwt } });
 */
export interface IdentityJwtOptions {
  /** HS256: a secret of at least 32 bytes. EdDSA: an Ed25519 private key (KeyObject or PEM). */
  key: string | Buffer | KeyObject;
  /** Default `'HS256'` for a secret, `'EdDSA'` for a private key. */
  algorithm?: 'HS256' | 'EdDSA';
  /** Header that carries the JWT. Default `'x-forwarded-user-jwt'`. */
  header?: string;
  /** Lifetime in seconds. Default 60. */
  ttlSeconds?: number;
  /** The `iss` claim. Default: none. */
  issuer?: string;
  /** The `aud` claim. Default: none. */
  audience?: string;
}

/**
 * The identity-header mode (the gate's `identity`, or `forwardIdentity` alone).
 * @example
 * const identity: ForwardIdentityOptions = { header: 'x-remote-user' };
 * createTokenGate({ identity });
 */
export interface ForwardIdentityOptions {
  /** Header that tells the upstream who the user is. Default `'x-forwarded-user'`. */
  header?: string;
  /** Also send a signed JWT (`sub` = user, `tid` = token id, `scope`). Default: off. */
  jwt?: IdentityJwtOptions;
}

/** The identity header and the JWT header of the identity-header mode, stripped in every mode. */
export const DEFAULT_IDENTITY_HEADER = 'x-forwarded-user';
export const DEFAULT_JWT_HEADER = 'x-forwarded-user-jwt';

export const FORWARD_IDENTITY_OPTIONS: Shape<ForwardIdentityOptions> = {
  header: headerNameCheck,
  jwt: object<IdentityJwtOptions>({
    key: any,
    algorithm: oneOf(['HS256', 'EdDSA']),
    header: headerNameCheck,
    ttlSeconds: integer(5, 3_600),
    issuer: string(),
    audience: string(),
  }),
};

function headerName(value: string | undefined, fallback: string, option: string): string {
  const name = (value ?? fallback).toLowerCase();
  if (!isHeaderName(name) || name === 'authorization' || name === 'host') {
    throw new TypeError(`\`${option}\` is not a usable header name: ${JSON.stringify(value)}`);
  }
  return name;
}

/** RFC 8187's `ext-value` prefix: UTF-8, no language. */
const ENCODED_PREFIX = "UTF-8''";
/** Printable Latin-1: what an HTTP header carries as it is (user names have no control characters). */
const LATIN1 = /^[\x20-\x7e\xa0-\xff]*$/;

/**
 * The identity header's value for a user name. A name in Latin-1 travels as it is (as it always
 * has); any other (`王伟`), and one that itself begins with `UTF-8''`, travels RFC 8187-encoded:
 * `UTF-8''` then the UTF-8 bytes percent-encoded outside RFC 8187's `attr-char`
 * (`UTF-8''%E7%8E%8B%E4%BC%9F`). Headers cannot carry such characters raw (Node.js refuses
 * them: a 500). The JWT's `sub` always holds the plain name.
 * @example identityHeaderValue('王伟'); // "UTF-8''%E7%8E%8B%E4%BC%9F"
 */
export function identityHeaderValue(user: string): string {
  if (LATIN1.test(user) && !user.startsWith(ENCODED_PREFIX)) return user;
  const encoded = encodeURIComponent(user).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${ENCODED_PREFIX}${encoded}`;
}

type Signer = (user: string, tokenId: string, scope: string) => Promise<string>;

function createSigner(options: IdentityJwtOptions): Signer {
  const ttl = options.ttlSeconds ?? 60;
  if (!Number.isInteger(ttl) || ttl < 5 || ttl > 3600)
    throw new TypeError('`jwt.ttlSeconds` must be an integer from 5 to 3600');
  let key: KeyObject;
  try {
    key =
      typeof options.key === 'object' && !Buffer.isBuffer(options.key)
        ? options.key
        : typeof options.key === 'string' && options.key.includes('-----BEGIN')
          ? createPrivateKey(options.key)
          : createSecretKey(Buffer.from(options.key));
  } catch {
    throw new TypeError('`jwt.key` must be a secret (32+ bytes) or an Ed25519 private key');
  }
  const algorithm = options.algorithm ?? (key.type === 'secret' ? 'HS256' : 'EdDSA');
  if (algorithm === 'HS256' && (key.type !== 'secret' || (key.symmetricKeySize ?? 0) < 32)) {
    throw new TypeError('`jwt.key` must be a secret of at least 32 bytes for HS256');
  }
  if (algorithm === 'EdDSA' && (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519')) {
    throw new TypeError('`jwt.key` must be an Ed25519 private key for EdDSA');
  }
  // A JWT is reused for half its life, so a busy token costs one signature per half-TTL.
  const cache = new BoundedCache<string, string>(10_000, (ttl * 1000) / 2);
  return async (user, tokenId, scope) => {
    const now = Date.now();
    const cacheKey = `${tokenId}\u0000${user}\u0000${scope}`;
    const hit = cache.get(cacheKey, now);
    if (hit !== undefined) return hit;
    let jwt = new SignJWT({ tid: tokenId, scope })
      .setProtectedHeader({ alg: algorithm, typ: 'JWT' })
      .setSubject(user)
      .setIssuedAt()
      .setExpirationTime(Math.floor(now / 1000) + ttl);
    if (options.issuer !== undefined) jwt = jwt.setIssuer(options.issuer);
    if (options.audience !== undefined) jwt = jwt.setAudience(options.audience);
    const signed = await jwt.sign(key);
    cache.set(cacheKey, signed, undefined, now);
    return signed;
  };
}

/**
 * Tells the upstream who the user is: sets the identity header for token requests, strips any
 * client-sent copy of it (every request, any letter case), and removes the token's
 * `Authorization` header so a token never travels upstream. Optionally adds a signed JWT.
 * Password requests keep their `Authorization` for the upstream to check.
 * @example app.use(forwardIdentity({ header: 'x-forwarded-user', jwt: { key: process.env.JWT_SECRET! } }))
 */
export function forwardIdentity(options: Readonly<ForwardIdentityOptions> = {}): RequestHandler {
  return middlewareOf(forwardIdentityStep(options));
}

/** `forwardIdentity` as a step of `protect()`. */
export function forwardIdentityStep(options: Readonly<ForwardIdentityOptions>): Step {
  validateOptions<ForwardIdentityOptions>(options, FORWARD_IDENTITY_OPTIONS);
  const header = headerName(options.header, DEFAULT_IDENTITY_HEADER, 'header');
  const jwtHeader = options.jwt
    ? headerName(options.jwt.header, DEFAULT_JWT_HEADER, 'jwt.header')
    : undefined;
  const sign = options.jwt ? createSigner(options.jwt) : undefined;
  // The default JWT header is stripped even when no JWT is configured: it is never the client's to send.
  const names = [...new Set([header, DEFAULT_JWT_HEADER, ...(jwtHeader ? [jwtHeader] : [])])];
  const spoofable = spellingsOf(names);
  const withAuthorization = spellingsOf([...names, 'authorization']);

  return function forwardIdentityStep(req, _res, auth, next) {
    const tokenRequest = auth.kind === 'token' || isTokenRequest(auth);
    const remove = tokenRequest ? withAuthorization : spoofable;
    removeHeaders(req, remove);
    if (auth.kind !== 'token' || auth.user === undefined || auth.token === undefined) {
      next();
      return;
    }
    const user = auth.user;
    addHeader(req, header, identityHeaderValue(user));
    if (sign === undefined || jwtHeader === undefined) {
      next();
      return;
    }
    sign(user, auth.token.id, auth.token.scope).then((jwt) => {
      addHeader(req, jwtHeader, jwt);
      next();
    }, next);
  };
}
