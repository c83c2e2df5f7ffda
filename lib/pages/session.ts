import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { EncryptJWT, type JWTPayload, jwtDecrypt } from 'jose';
import { BoundedCache } from '../internal/bounded-cache.js';
import { array, boolean, either, fail, integer, oneOf, type Shape, string } from '../internal/options.js';
import { isCookieName } from './cookies.js';

/**
 * The login session of the token pages: an HttpOnly cookie holding an encrypted JWT.
 * @example
 * // Rotating keys: the new one seals, both open. The same on every instance.
 * const session: SessionOptions = {
 *   secret: [process.env.SESSION_SECRET!, process.env.OLD_SESSION_SECRET!],
 *   maxAgeMs: 14_400_000,
 * };
 * app.use(
 *   '/tokens',
 *   gate.pages({ login: passwordLogin({ verify: bitbucketPasswordVerifier({ baseUrl }) }), session }),
 * );
 */
export interface SessionOptions {
  /**
   * Key material, at least 32 bytes (e.g. `openssl rand -base64 32`). A list rotates keys: the
   * first seals new cookies, every one opens them. The same on every instance of a fleet.
   */
  secret: string | Buffer | readonly (string | Buffer)[];
  /** A session unused this long ends. Default 1,800,000 ms (30 minutes). */
  idleTimeoutMs?: number;
  /** A session ends this long after the login, however busy. Default 28,800,000 ms (8 hours). */
  maxAgeMs?: number;
  /** `Secure` cookies (HTTPS only). Default true; turn off only for plain-HTTP development. */
  secure?: boolean;
  /**
   * `'lax'` (default) or `'strict'`. With `'strict'` a login that comes back from the identity
   * provider (a cross-site redirect) continues through a small same-site page.
   */
  sameSite?: 'lax' | 'strict';
  /** Cookie name. Default `'api_tokens_session'` (`__Secure-` prefixed when `secure`). */
  cookieName?: string;
}

const MIN_SECRET_BYTES = 32;

const secretCheck = (value: unknown, path: string) => {
  const bytes =
    typeof value === 'string' ? Buffer.byteLength(value) : Buffer.isBuffer(value) ? value.length : -1;
  if (bytes < 0) fail(path, 'must be a string or Buffer');
  if (bytes < MIN_SECRET_BYTES)
    fail(path, `must be at least ${MIN_SECRET_BYTES} bytes long (e.g. \`openssl rand -base64 32\`)`);
};

export const SESSION_OPTIONS: Shape<SessionOptions> = {
  secret: either(array(secretCheck, { minLength: 1 }), secretCheck),
  idleTimeoutMs: integer(60_000, 7 * 86_400_000),
  maxAgeMs: integer(60_000, 30 * 86_400_000),
  secure: boolean,
  sameSite: oneOf(['lax', 'strict']),
  cookieName: (value, path) => {
    string({ maxLength: 64 })(value, path);
    if (!isCookieName(value as string)) fail(path, 'is not a cookie name');
  },
};

/** How the user logged in. */
export type LoginMethod = 'password' | 'oidc' | 'principal';

/** A live session, as the pages see it. Times are epoch milliseconds. */
export interface Session {
  /** Random id: binds the CSRF token and lets logout end this session here. */
  sid: string;
  /** The logged-in user; null for a browser that has not logged in (principal mode). */
  user: string | null;
  /** Groups from the identity provider's claim that matter to the gate's permissions. */
  groups: readonly string[];
  via: LoginMethod;
  authAt: number;
  seenAt: number;
  expiresAt: number;
}

/** A login in progress (the SSO redirect's state, nonce and PKCE verifier; a login form's id). */
export interface PendingLogin {
  id: string;
  state?: string;
  nonce?: string;
  verifier?: string;
}

const SESSION_AUDIENCE = 'express-api-tokens:pages:session';
const LOGIN_AUDIENCE = 'express-api-tokens:pages:login';
/** How long a login may take (the identity provider's pages included). */
export const LOGIN_WINDOW_MS = 600_000;

interface Key {
  kid: string;
  encryption: Uint8Array;
  csrf: Buffer;
}

function derive(secret: string | Buffer): Key {
  const ikm = typeof secret === 'string' ? Buffer.from(secret) : secret;
  const part = (info: string, length: number) =>
    Buffer.from(hkdfSync('sha256', ikm, 'express-api-tokens pages', info, length));
  return {
    kid: part('key id', 9).toString('base64url'),
    encryption: new Uint8Array(part('session encryption A256GCM', 32)),
    csrf: part('csrf', 32),
  };
}

export const randomId = (bytes = 18) => randomBytes(bytes).toString('base64url');

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * Seals and opens the pages' cookies: JWE (`dir`, `A256GCM`) made with jose, so the browser can
 * neither read nor change them. Checks the absolute lifetime (`exp`) and the idle lifetime
 * (`seen`); logged-out sessions are refused by this process until they would have expired.
 */
export class SessionCodec {
  readonly idleTimeoutMs: number;
  readonly maxAgeMs: number;
  readonly #keys: Key[];
  readonly #byKid: Map<string, Key>;
  readonly #ended: BoundedCache<string, true>;
  readonly #now: () => number;

  constructor(options: Readonly<SessionOptions>, now: () => number = Date.now) {
    const secrets = Array.isArray(options.secret) ? options.secret : [options.secret as string | Buffer];
    this.#keys = secrets.map(derive);
    this.#byKid = new Map(this.#keys.map((k) => [k.kid, k]));
    this.idleTimeoutMs = options.idleTimeoutMs ?? 1_800_000;
    this.maxAgeMs = options.maxAgeMs ?? 28_800_000;
    this.#ended = new BoundedCache(100_000, this.maxAgeMs);
    this.#now = now;
  }

  now(): number {
    return this.#now();
  }

  /** A new session for `user`, logged in now. */
  start(user: string | null, via: LoginMethod, groups: readonly string[] = []): Session {
    const now = this.#now();
    return { sid: randomId(), user, groups, via, authAt: now, seenAt: now, expiresAt: now + this.maxAgeMs };
  }

  /** True when the session was last refreshed long enough ago to write its cookie again. */
  due(session: Session): boolean {
    return this.#now() - session.seenAt > Math.min(60_000, this.idleTimeoutMs / 10);
  }

  touch(session: Session): Session {
    return { ...session, seenAt: this.#now() };
  }

  async seal(session: Session): Promise<string> {
    const key = this.#keys[0]!;
    return new EncryptJWT({
      sid: session.sid,
      ...(session.user === null ? {} : { sub: session.user }),
      ...(session.groups.length === 0 ? {} : { grp: [...session.groups] }),
      via: session.via,
      seen: session.seenAt,
      auth: session.authAt,
    })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid })
      .setAudience(SESSION_AUDIENCE)
      .setExpirationTime(Math.floor(session.expiresAt / 1000))
      .encrypt(key.encryption);
  }

  /** The session in a cookie value, or null when absent, forged, expired, idle too long or logged out. */
  async open(value: string | undefined): Promise<Session | null> {
    const claims = await this.#decrypt(value, SESSION_AUDIENCE);
    if (claims === null) return null;
    const { sid, via, seen, auth, grp } = claims;
    const user = text(claims.sub) ?? null;
    if (typeof sid !== 'string' || typeof seen !== 'number' || typeof auth !== 'number') return null;
    if (via !== 'password' && via !== 'oidc' && via !== 'principal') return null;
    const now = this.#now();
    if (now - seen > this.idleTimeoutMs || this.#ended.has(sid)) return null;
    const groups = Array.isArray(grp) ? grp.filter((g): g is string => typeof g === 'string') : [];
    return { sid, user, groups, via, authAt: auth, seenAt: seen, expiresAt: (claims.exp ?? 0) * 1000 };
  }

  /** Logout: this process refuses the session from now on, even if its cookie is replayed. */
  end(session: Session): void {
    this.#ended.set(session.sid, true, Math.max(1, session.expiresAt - this.#now()));
  }

  async sealLogin(pending: PendingLogin): Promise<string> {
    const key = this.#keys[0]!;
    return new EncryptJWT({ ...pending })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid })
      .setAudience(LOGIN_AUDIENCE)
      .setExpirationTime(Math.floor((this.#now() + LOGIN_WINDOW_MS) / 1000))
      .encrypt(key.encryption);
  }

  async openLogin(value: string | undefined): Promise<PendingLogin | null> {
    const claims = await this.#decrypt(value, LOGIN_AUDIENCE);
    if (claims === null || typeof claims['id'] !== 'string') return null;
    const pending: PendingLogin = { id: claims['id'] };
    for (const field of ['state', 'nonce', 'verifier'] as const) {
      const v = text(claims[field]);
      if (v !== undefined) pending[field] = v;
    }
    return pending;
  }

  /** The CSRF token of forms in a session (or of a login form): an HMAC of its id. */
  csrfToken(id: string): string {
    return createHmac('sha256', this.#keys[0]!.csrf).update(id).digest('base64url');
  }

  /** Checks a form's CSRF token in constant time, against every key (keys rotate). */
  csrfMatches(id: string, given: unknown): boolean {
    if (typeof given !== 'string' || given.length !== 43) return false;
    const offered = Buffer.from(given);
    let ok = false;
    for (const key of this.#keys) {
      const expected = Buffer.from(createHmac('sha256', key.csrf).update(id).digest('base64url'));
      if (expected.length === offered.length && timingSafeEqual(expected, offered)) ok = true;
    }
    return ok;
  }

  async #decrypt(value: string | undefined, audience: string): Promise<JWTPayload | null> {
    if (value === undefined || value.length === 0 || value.length > 8_192) return null;
    try {
      const { payload } = await jwtDecrypt(
        value,
        (header) => {
          const key = typeof header.kid === 'string' ? this.#byKid.get(header.kid) : undefined;
          if (key === undefined) throw new Error('unknown key');
          return key.encryption;
        },
        {
          audience,
          keyManagementAlgorithms: ['dir'],
          contentEncryptionAlgorithms: ['A256GCM'],
          currentDate: new Date(this.#now()),
          requiredClaims: ['exp'],
        },
      );
      return payload;
    } catch {
      return null;
    }
  }
}
