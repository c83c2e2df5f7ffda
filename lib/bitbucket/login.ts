import bcrypt from 'bcryptjs';
import type { RequestHandler } from 'express';
import {
  CLIENT_IP_OPTIONS,
  type ClientIpOptions,
  createClientIpResolver,
} from '../client-address/resolver.js';
import { DEFAULT_TOKEN_PREFIX } from '../defaults.js';
import { AuthenticationError, ForbiddenError, TokenGateError, UnavailableError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse } from '../http/respond.js';
import { BoundedCache } from '../internal/bounded-cache.js';
import { defined } from '../internal/defined.js';
import { any, func, integer, object, string, validateOptions, withMethods } from '../internal/options.js';
import { authOf } from '../request/auth-context.js';
import { parseAuthorization } from '../request/authorization-header.js';
import { rememberPasswordLogin } from '../request/login-password.js';
import type { TokenStore } from '../stores/token-store.js';
import {
  LOGIN_THROTTLE_OPTIONS,
  LoginThrottle,
  type LoginThrottleOptions,
} from '../throttle/login-throttle.js';
import { assertTokenPrefix } from '../tokens/format.js';
import { foldName, isUserName, sameUser } from '../validate.js';
import { bitbucketBaseUrl, bitbucketGet, bitbucketJson } from './rest-client.js';

/**
 * A Bitbucket account, as Bitbucket names it. `bitbucketLogin` sets it as `req.user`.
 * @example
 * const account: BitbucketUser | null = await bitbucketPasswordVerifier({ baseUrl })('alice', password);
 * if (account !== null) console.log(account.name, account.slug);
 */
export interface BitbucketUser {
  /** The user name (what tokens are issued to). */
  name: string;
  /** The URL slug (what Bitbucket's per-user REST paths take). */
  slug: string;
}

/**
 * Checks a user name and password: the account, or null when refused. `bitbucketPasswordVerifier`
 * makes one; `passwordLogin` takes any.
 * @example
 * const verify: PasswordVerifier = async (user, password) =>
 *   user === 'demo' && password === 'demo' ? { name: 'demo', slug: 'demo' } : null;
 * gate.pages({ login: passwordLogin({ verify }), session: { secret: process.env.SESSION_SECRET! } });
 */
export type PasswordVerifier = (user: string, password: string) => Promise<BitbucketUser | null>;

/**
 * Options of `bitbucketPasswordVerifier` (and, with more, of `bitbucketLogin`).
 * @example
 * const options: BitbucketPasswordVerifierOptions = {
 *   baseUrl: 'https://bitbucket.example.com',
 *   cacheTtlMs: 30_000,
 * };
 * const verify = bitbucketPasswordVerifier(options);
 */
export interface BitbucketPasswordVerifierOptions {
  /** Bitbucket's base URL, e.g. `https://bitbucket.example.com`. */
  baseUrl: string;
  /**
   * How long a verified login is remembered (as a bcrypt hash of the password, never the
   * password). A changed password or a disabled account stops working here within this time.
   * Default 60,000 ms.
   */
  cacheTtlMs?: number;
  /** Most logins remembered. Default 10,000. */
  maxEntries?: number;
  /** bcrypt cost of the remembered password hashes. Default 8. */
  bcryptCost?: number;
  /** Deadline of each call to Bitbucket. Default 5,000 ms. */
  timeoutMs?: number;
}

const VERIFIER_OPTIONS = {
  baseUrl: any,
  cacheTtlMs: integer(),
  maxEntries: integer(),
  bcryptCost: integer(4, 15),
  timeoutMs: integer(),
};

interface Remembered {
  hash: string;
  user: BitbucketUser;
}

/** Bitbucket's answer for an account that must solve a CAPTCHA before it may log in again. */
async function captchaRequired(response: Response): Promise<boolean> {
  if (/captcha/i.test(response.headers.get('x-authentication-denied-reason') ?? '')) return true;
  const body = (await response.json().catch(() => null)) as {
    errors?: Array<{ exceptionName?: unknown }>;
  } | null;
  return (
    body?.errors?.some((e) => typeof e?.exceptionName === 'string' && /captcha/i.test(e.exceptionName)) ??
    false
  );
}

/**
 * Checks passwords against Bitbucket: `GET /rest/api/1.0/users?filter=<user>` authenticated as
 * that user, which also tells the account's name and slug (they differ for many directory
 * users). A refusal resolves null; a CAPTCHA demand is a 403 `LOGIN_CAPTCHA_REQUIRED`;
 * Bitbucket unreachable or erring is a 503.
 * @example const verify = bitbucketPasswordVerifier({ baseUrl: 'https://bitbucket.example.com' });
 */
export function bitbucketPasswordVerifier(
  options: Readonly<BitbucketPasswordVerifierOptions>,
): PasswordVerifier {
  validateOptions<BitbucketPasswordVerifierOptions>(options, VERIFIER_OPTIONS);
  const baseUrl = bitbucketBaseUrl(options.baseUrl);
  const cost = options.bcryptCost ?? 8;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const remembered = new BoundedCache<string, Remembered>(
    options.maxEntries ?? 10_000,
    options.cacheTtlMs ?? 60_000,
  );

  return async function verifyBitbucketPassword(user, password) {
    const key = foldName(user);
    const hit = remembered.get(key);
    if (hit !== undefined && (await bcrypt.compare(password, hit.hash))) return hit.user;
    const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    const response = await bitbucketGet(
      `${baseUrl}/rest/api/1.0/users?filter=${encodeURIComponent(user)}&limit=100`,
      authorization,
      timeoutMs,
    );
    if (response.status === 401 || response.status === 403) {
      if (await captchaRequired(response)) {
        throw new ForbiddenError(
          'LOGIN_CAPTCHA_REQUIRED',
          'Bitbucket asks this account to solve a CAPTCHA: log in to Bitbucket in a browser once, then try again.',
        );
      }
      return null;
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new UnavailableError(
        'UPSTREAM_UNAVAILABLE',
        `Bitbucket could not check the login (${response.status}).`,
      );
    }
    const authenticated = response.headers.get('x-ausername');
    const body = (await bitbucketJson(response)) as { values?: Array<{ name?: unknown; slug?: unknown }> };
    const wanted = authenticated ?? user;
    const match = body?.values?.find((v) => typeof v?.name === 'string' && sameUser(v.name, wanted));
    // Bitbucket names the authenticated user (X-AUSERNAME) or lists it: an answer with neither
    // proves nothing about who logged in, so it is refused.
    if (match === undefined && (authenticated === null || !sameUser(authenticated, user))) return null;
    const account: BitbucketUser = {
      name: typeof match?.name === 'string' ? match.name : (authenticated ?? user),
      slug: typeof match?.slug === 'string' ? match.slug : (authenticated ?? user).toLowerCase(),
    };
    remembered.set(key, { hash: await bcrypt.hash(password, cost), user: account });
    return account;
  };
}

/**
 * Options of `bitbucketLogin`: those of `bitbucketPasswordVerifier` and `clientIp`, and more.
 * @example
 * const options: BitbucketLoginOptions = {
 *   baseUrl: 'https://bitbucket.example.com',
 *   trustedProxies: ['10.0.0.5'],
 *   store, // failed logins counted fleet-wide
 *   throttle: { maxFailuresPerUser: 10 },
 *   onEvent: (event) => console.log(JSON.stringify(event)),
 * };
 * app.use('/tokens/api', bitbucketLogin(options), gate.router());
 */
export interface BitbucketLoginOptions extends BitbucketPasswordVerifierOptions, ClientIpOptions {
  /** Prefix of the gate's tokens, to tell them from passwords. Default `'bbt'`. */
  tokenPrefix?: string;
  /**
   * Where failed-login counts are shared (a fleet's `TokenStore`); default: this process.
   * Pass the gate's store so every instance sees every failure.
   */
  store?: Pick<TokenStore, 'countFailure'>;
  /** Limits on failed logins. Default: 30 per address and 5 per address + user name in 15 minutes. */
  throttle?: LoginThrottleOptions;
  /** Receives an `auth.denied` event for every refused login. Default: none. */
  onEvent?: EventListener;
}

/**
 * Logs callers of the management API in with their Bitbucket user name and password (Basic),
 * checked against Bitbucket, and sets `req.user = { name, slug }`. Failed logins are throttled
 * per address and per address + user, and reported as `auth.denied` events. In access-token
 * mode the router mints the user's Bitbucket access token with the password (held for the
 * request only, never on `req` or in a store). A request that
 * carries one of our tokens instead is passed on without a user: the router lets a token do
 * exactly one thing, revoke itself.
 * @example app.use('/tokens', bitbucketLogin({ baseUrl, store, onEvent }), gate.router())
 */
export function bitbucketLogin(options: Readonly<BitbucketLoginOptions>): RequestHandler {
  validateOptions<BitbucketLoginOptions>(options, {
    ...VERIFIER_OPTIONS,
    ...CLIENT_IP_OPTIONS,
    tokenPrefix: string(),
    store: withMethods(['countFailure'], 'a TokenStore that counts failures'),
    throttle: object(LOGIN_THROTTLE_OPTIONS),
    onEvent: func,
  });
  const { baseUrl, cacheTtlMs, maxEntries, bcryptCost, timeoutMs } = options;
  const verify = bitbucketPasswordVerifier({
    baseUrl,
    ...defined({ cacheTtlMs, maxEntries, bcryptCost, timeoutMs }),
  });
  const prefix = options.tokenPrefix ?? DEFAULT_TOKEN_PREFIX;
  assertTokenPrefix(prefix);
  const resolveIp = createClientIpResolver(
    defined({ trustedProxies: options.trustedProxies, clientIpHeader: options.clientIpHeader }),
  );
  const throttle = new LoginThrottle(options.store, options.throttle);
  const emit = safeEmitter(options.onEvent);

  return function bitbucketLoginMiddleware(req, res, next) {
    const credentials = parseAuthorization(req, prefix);
    if (credentials.kind === 'token') {
      next();
      return;
    }
    const clientIp = resolveIp(req)?.text ?? null;
    const auth = authOf(req);
    if (auth.clientIp === undefined) auth.clientIp = clientIp;
    const deny = (error: TokenGateError, user?: string) =>
      refuse(req, res, error, emit, user === undefined ? {} : { user }, 'basic');
    if (credentials.kind === 'invalid') {
      deny(credentials.error);
      return;
    }
    if (credentials.kind === 'none') {
      deny(
        new AuthenticationError('CREDENTIALS_MISSING', 'Log in with your Bitbucket user name and password.'),
      );
      return;
    }
    const { user, password } = credentials;
    const wrong = () =>
      new AuthenticationError('PASSWORD_INVALID', 'Log in with your Bitbucket user name and password.');
    try {
      throttle.assertAllowed(clientIp, user);
    } catch (err) {
      deny(err as TokenGateError, user);
      return;
    }
    // A name outside the naming rule (see `validateUser`) never reaches Bitbucket: it fails as a wrong login.
    const attempt =
      user === '' || password === '' || !isUserName(user) ? Promise.resolve(null) : verify(user, password);
    attempt.then(
      (account) => {
        if (account === null) {
          void throttle.recordFailure(clientIp, user);
          deny(wrong(), user);
          return;
        }
        (req as { user?: unknown }).user = account;
        // Access-token mode mints the user's Bitbucket token with it; kept off `req` itself.
        rememberPasswordLogin(req, { user: account.name, slug: account.slug, password });
        next();
      },
      (err: unknown) => {
        if (err instanceof TokenGateError) deny(err, user);
        else next(err);
      },
    );
  };
}
