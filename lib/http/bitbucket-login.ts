import bcrypt from 'bcryptjs';
import type { RequestHandler } from 'express';
import { AuthenticationError, ForbiddenError, TokenGateError, UnavailableError } from '../errors.js';
import {
  bitbucketBaseUrl,
  bitbucketGet,
  bitbucketJson,
  positiveInteger,
} from '../internal/bitbucket-client.js';
import { parseAuthorization } from '../request/authorization-header.js';
import { assertTokenPrefix } from '../tokens/format.js';
import { sendError } from './respond.js';

export interface BitbucketLoginOptions {
  /** Bitbucket's base URL, e.g. `https://bitbucket.example.com`. */
  baseUrl: string;
  /** How long a verified login is remembered. Default 300,000 ms (5 minutes). */
  cacheTtlMs?: number;
  /** Most logins remembered. Default 10,000. */
  maxEntries?: number;
  /** bcrypt cost of the remembered password hashes. Default 8. */
  bcryptCost?: number;
  /** Deadline of each call to Bitbucket. Default 5,000 ms. */
  timeoutMs?: number;
  /** Prefix of the gate's tokens, to refuse them here. Default `'bbt'`. */
  tokenPrefix?: string;
}

interface Remembered {
  hash: string;
  name: string;
  until: number;
}

/**
 * Logs callers of the management API in with their Bitbucket user name and password (Basic),
 * checked against Bitbucket (`GET /rest/api/1.0/users/{user}` as that user), and sets
 * `req.user = { name }`. Verified logins are remembered briefly as a bcrypt hash of the
 * password, never the password, so the cache can neither leak it nor accept another one.
 * @example app.use('/tokens', bitbucketLogin({ baseUrl }), gate.router())
 */
export function bitbucketLogin(options: Readonly<BitbucketLoginOptions>): RequestHandler {
  const baseUrl = bitbucketBaseUrl(options?.baseUrl);
  const ttl = positiveInteger(options.cacheTtlMs, 300_000, 'cacheTtlMs');
  const maxEntries = positiveInteger(options.maxEntries, 10_000, 'maxEntries');
  const cost = positiveInteger(options.bcryptCost, 8, 'bcryptCost');
  if (cost < 4 || cost > 15) throw new TypeError('`bcryptCost` must be from 4 to 15');
  const timeoutMs = positiveInteger(options.timeoutMs, 5_000, 'timeoutMs');
  const prefix = options.tokenPrefix ?? 'bbt';
  assertTokenPrefix(prefix);
  const remembered = new Map<string, Remembered>();
  const wrong = () =>
    new AuthenticationError('PASSWORD_INVALID', 'Log in with your Bitbucket user name and password.');

  async function login(user: string, password: string): Promise<string> {
    const key = user.toLowerCase();
    const hit = remembered.get(key);
    if (hit !== undefined && hit.until > Date.now() && (await bcrypt.compare(password, hit.hash)))
      return hit.name;
    const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    const response = await bitbucketGet(
      `${baseUrl}/rest/api/1.0/users/${encodeURIComponent(user)}`,
      authorization,
      timeoutMs,
    );
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      await response.body?.cancel();
      throw wrong();
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new UnavailableError(
        'UPSTREAM_UNAVAILABLE',
        `Bitbucket could not check the login (${response.status}).`,
      );
    }
    const body = (await bitbucketJson(response)) as { name?: unknown };
    const name = typeof body?.name === 'string' && body.name.toLowerCase() === key ? body.name : user;
    if (remembered.size >= maxEntries) remembered.delete(remembered.keys().next().value!);
    remembered.set(key, { hash: await bcrypt.hash(password, cost), name, until: Date.now() + ttl });
    return name;
  }

  return function bitbucketLoginMiddleware(req, res, next) {
    const credentials = parseAuthorization(req, prefix);
    let failure: TokenGateError | undefined;
    if (credentials.kind === 'invalid') failure = credentials.error;
    else if (credentials.kind === 'token') {
      failure = new ForbiddenError(
        'TOKEN_CANNOT_MINT',
        'API tokens cannot manage tokens. Log in with your Bitbucket password.',
      );
    } else if (credentials.kind === 'none' || credentials.user === '' || credentials.password === '')
      failure = wrong();
    if (failure !== undefined || credentials.kind !== 'password') {
      sendError(req, res, failure ?? wrong());
      return;
    }
    login(credentials.user, credentials.password).then(
      (name) => {
        (req as { user?: unknown }).user = { name };
        next();
      },
      (err: unknown) => {
        if (err instanceof TokenGateError) sendError(req, res, err);
        else next(err);
      },
    );
  };
}
