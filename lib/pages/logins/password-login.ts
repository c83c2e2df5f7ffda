import type { PasswordVerifier } from '../../bitbucket/login.js';
import { func, type Shape, string, validateOptions } from '../../internal/options.js';

/**
 * Options of `passwordLogin`.
 * @example
 * const options: PasswordLoginOptions = {
 *   verify: bitbucketPasswordVerifier({ baseUrl: 'https://bitbucket.example.com' }),
 *   usernameLabel: 'Bitbucket username',
 * };
 * const login = passwordLogin(options);
 */
export interface PasswordLoginOptions {
  /**
   * Checks a user name and password: the account (`{ name }`, whose `name` the tokens are issued
   * to) or null when wrong. `bitbucketPasswordVerifier({ baseUrl })` checks them against Bitbucket.
   */
  verify: PasswordVerifier;
  /** Label of the user-name field. Default `'Username'`. */
  usernameLabel?: string;
}

/**
 * The token pages' password login (built by `passwordLogin`); pass it to `gate.pages({ login })`.
 * @example
 * const login: PasswordLogin = passwordLogin({ verify: bitbucketPasswordVerifier({ baseUrl }) });
 * app.use('/tokens', gate.pages({ login, session: { secret: process.env.SESSION_SECRET! } }));
 */
export interface PasswordLogin {
  /** `'password'`. */
  readonly kind: 'password';
  /** Checks the user name and password. */
  readonly verify: PasswordVerifier;
  /** Label of the user-name field. */
  readonly usernameLabel: string;
}

const PASSWORD_LOGIN_OPTIONS: Shape<PasswordLoginOptions> = {
  verify: func,
  usernameLabel: string({ maxLength: 60 }),
};

/**
 * A login form for the token pages with a user name and password, checked by `verify`. Failed
 * logins are throttled per address and per address + user (the gate's `loginThrottle`) and
 * reported as `auth.denied` events.
 * @example
 * app.use(
 *   '/tokens',
 *   gate.pages({
 *     login: passwordLogin({
 *       verify: bitbucketPasswordVerifier({ baseUrl: 'https://bitbucket.example.com' }),
 *     }),
 *     session: { secret: process.env.SESSION_SECRET! },
 *   }),
 * );
 */
export function passwordLogin(options: Readonly<PasswordLoginOptions>): PasswordLogin {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('passwordLogin() takes an options object: { verify }');
  validateOptions<PasswordLoginOptions>(options, PASSWORD_LOGIN_OPTIONS);
  if (options.verify === undefined)
    throw new TypeError('`verify` is required: a (user, password) => account check');
  return Object.freeze({
    kind: 'password' as const,
    verify: options.verify,
    usernameLabel: options.usernameLabel ?? 'Username',
  });
}
