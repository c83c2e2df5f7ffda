import type { Request } from 'express';
import { fail, func, object, type Shape, string, validateOptions } from '../internal/options.js';
import type { OidcLogin } from './logins/oidc-login.js';
import type { PasswordLogin } from './logins/password-login.js';
import { SESSION_OPTIONS, type SessionOptions } from './session.js';

/**
 * How people log in to the token pages: `passwordLogin(…)` or `oidcLogin(…)`.
 * @example
 * const login: LoginProvider = process.env.OIDC_ISSUER
 *   ? oidcLogin({
 *       issuer: process.env.OIDC_ISSUER,
 *       clientId: 'tokens',
 *       redirectUri: 'https://git.example.com/tokens/login/callback',
 *     })
 *   : passwordLogin({ verify: bitbucketPasswordVerifier({ baseUrl }) });
 */
export type LoginProvider = PasswordLogin | OidcLogin;

/**
 * Options of `gate.pages()`.
 * @example
 * const options: PagesOptions = {
 *   login: passwordLogin({ verify: bitbucketPasswordVerifier({ baseUrl }) }),
 *   session: { secret: process.env.SESSION_SECRET!, idleTimeoutMs: 900_000 },
 *   publicUrl: 'https://git.example.com/',
 *   cloneExample: 'scm/OPS/deploy.git',
 * };
 * app.use('/tokens', gate.pages(options));
 */
export interface PagesOptions {
  /** The login: `passwordLogin({ verify })` or `oidcLogin({ … })`. Give this or `principal`. */
  login?: LoginProvider;
  /**
   * For apps that log people in themselves (in front of the pages): the user name, or undefined
   * when nobody is logged in (the pages then answer 401). Give this or `login`.
   */
  principal?: (req: Request) => string | undefined;
  /** The session cookie: `secret` (required, ≥ 32 bytes) and lifetimes. */
  session: SessionOptions;
  /**
   * The public URL of the app the pages are mounted in (where `/scm` and `/rest` are reached),
   * e.g. `https://git.example.com/` or `https://example.com/bitbucket/` behind a reverse proxy
   * with a path prefix. Used for the ready-to-paste `git clone` and `curl` lines, the cookie
   * path and the origin check. Default: taken from each request (`Host`).
   */
  publicUrl?: string;
  /** Repository path in the ready-to-paste `git clone` line. Default `'scm/PROJECT/repo.git'`. */
  cloneExample?: string;
  /** REST path in the ready-to-paste `curl` line. Default `'rest/api/1.0/projects'`. */
  curlExample?: string;
  /** Heading of the pages. Default `'API tokens'`. */
  title?: string;
}

const relativePath = (value: unknown, path: string) => {
  string({ maxLength: 300 })(value, path);
  if (!/^[A-Za-z0-9~][A-Za-z0-9._~/%+-]*$/.test(value as string))
    fail(path, 'must be a relative URL path such as `scm/PROJ/repo.git`');
};

const publicUrl = (value: unknown, path: string) => {
  string({ maxLength: 2_000 })(value, path);
  let url: URL;
  try {
    url = new URL(value as string);
  } catch {
    fail(path, 'must be an absolute URL such as `https://git.example.com/`');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(path, 'must be an http: or https: URL');
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '')
    fail(path, 'must have no query, fragment or credentials');
};

export const PAGES_OPTIONS: Shape<PagesOptions> = {
  login: (value, path) => {
    const kind = (value as { kind?: unknown } | null)?.kind;
    if (kind !== 'password' && kind !== 'oidc')
      fail(path, 'must be made by `passwordLogin()` or `oidcLogin()`');
  },
  principal: func,
  session: object(SESSION_OPTIONS),
  publicUrl,
  cloneExample: relativePath,
  curlExample: relativePath,
  title: string({ maxLength: 60 }),
};

/** Throws at startup, naming the option, when `gate.pages()` options are not usable. */
export function checkPagesOptions(options: Readonly<PagesOptions>): void {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('gate.pages() takes an options object: { login | principal, session: { secret } }');
  validateOptions<PagesOptions>(options, PAGES_OPTIONS);
  if ((options.login === undefined) === (options.principal === undefined))
    throw new TypeError(
      'gate.pages() needs exactly one of `login` (passwordLogin or oidcLogin) and `principal`',
    );
  if (options.session?.secret === undefined)
    throw new TypeError('`session.secret` is required: at least 32 random bytes, the same on every instance');
}
