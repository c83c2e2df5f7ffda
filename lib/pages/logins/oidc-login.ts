import type * as OpenIdClient from 'openid-client';
import { AuthenticationError, TokenGateError, UnavailableError } from '../../errors.js';
import {
  array,
  boolean,
  fail,
  integer,
  oneOf,
  type Shape,
  string,
  validateOptions,
} from '../../internal/options.js';
import { groupNameProblem, validateUser } from '../../validate.js';
import type { PendingLogin } from '../session.js';

/**
 * Options of `oidcLogin`.
 * @example
 * const options: OidcLoginOptions = {
 *   issuer: 'https://sso.example.com/realms/corp',
 *   clientId: 'bitbucket-tokens',
 *   clientSecret: process.env.OIDC_CLIENT_SECRET!,
 *   redirectUri: 'https://git.example.com/tokens/login/callback',
 *   groupsClaim: 'groups',
 * };
 * const login = oidcLogin(options);
 */
export interface OidcLoginOptions {
  /** The identity provider's issuer URL (its `/.well-known/openid-configuration` is read). */
  issuer: string;
  /** The client id registered at the provider. */
  clientId: string;
  /** The client secret. Default: none, a public client (PKCE alone). */
  clientSecret?: string;
  /**
   * Where the provider sends the browser back: the pages' URL + `login/callback`, e.g.
   * `https://git.example.com/tokens/login/callback`. Register exactly this URL at the provider.
   */
  redirectUri: string;
  /**
   * The ID-token (or userinfo) claim holding the Bitbucket user name. Default
   * `'preferred_username'`. With `'email'`, the provider must also say `email_verified: true`.
   */
  userClaim?: string;
  /**
   * A claim listing the user's groups (`groups`, `roles`, …). Groups from it count for the
   * token pages' permissions together with the gate's `groups` resolver. Default: none.
   */
  groupsClaim?: string;
  /** Scopes asked for; must include `openid`. Default `['openid', 'profile']`. */
  scopes?: readonly string[];
  /** How the client authenticates at the token endpoint. Default `'client_secret_basic'`. */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post';
  /** Allow an `http:` issuer (a provider on this machine, tests). Default false. */
  allowHttp?: boolean;
  /** Deadline of each call to the provider. Default 10,000 ms. */
  timeoutMs?: number;
  /** Text of the login button. Default `'Log in with single sign-on'`. */
  buttonLabel?: string;
}

/**
 * The token pages' single sign-on login (built by `oidcLogin`); pass it to `gate.pages({ login })`.
 * @example
 * const login: OidcLogin = oidcLogin({
 *   issuer: 'https://sso.example.com/realms/corp',
 *   clientId: 'bitbucket-tokens',
 *   redirectUri: 'https://git.example.com/tokens/login/callback',
 * });
 * app.use('/tokens', gate.pages({ login, session: { secret: process.env.SESSION_SECRET! } }));
 */
export interface OidcLogin {
  /** `'oidc'`. */
  readonly kind: 'oidc';
  /** Text of the login button. */
  readonly buttonLabel: string;
  /** Where the provider sends the browser back. */
  readonly redirectUri: URL;
  /** The provider's authorization URL for a new login, and what the callback must match. */
  begin(): Promise<{
    /** Where to send the browser. */
    url: URL;
    /** State, nonce and PKCE verifier, kept in the login cookie until the callback. */
    pending: Omit<PendingLogin, 'id'>;
  }>;
  /** Completes a login from the callback's query: the user name and the claim's groups. */
  finish(
    query: string,
    pending: PendingLogin,
  ): Promise<{
    /** The Bitbucket user name, from `userClaim`. */
    user: string;
    /** The groups from `groupsClaim` (empty without it). */
    groups: string[];
  }>;
}

const absoluteUrl = (protocols: string[]) => (value: unknown, path: string) => {
  string()(value, path);
  let url: URL;
  try {
    url = new URL(value as string);
  } catch {
    fail(path, 'must be an absolute URL');
  }
  if (!protocols.includes(url.protocol)) fail(path, `must be an ${protocols.join(' or ')} URL`);
};

const OIDC_LOGIN_OPTIONS: Shape<OidcLoginOptions> = {
  issuer: absoluteUrl(['https:', 'http:']),
  clientId: string({ maxLength: 1_000 }),
  clientSecret: string({ maxLength: 10_000 }),
  redirectUri: absoluteUrl(['https:', 'http:']),
  userClaim: string({ maxLength: 200 }),
  groupsClaim: string({ maxLength: 200 }),
  scopes: (value, path) => {
    array(string({ pattern: /^[\x21\x23-\x5B\x5D-\x7E]+$/ }), { minLength: 1 })(value, path);
    if (!(value as string[]).includes('openid')) fail(path, "must include 'openid'");
  },
  tokenEndpointAuthMethod: oneOf(['client_secret_basic', 'client_secret_post']),
  allowHttp: boolean,
  timeoutMs: integer(100, 120_000),
  buttonLabel: string({ maxLength: 60 }),
};

function isNetworkFailure(err: unknown): boolean {
  const name = (err as { name?: unknown })?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return true;
  return err instanceof TypeError && /fetch failed/i.test(err.message);
}

/** A readable word from the provider's `error` parameter (never its free text). */
function providerError(query: URLSearchParams): string | undefined {
  const error = query.get('error');
  return error !== null && /^[a-z_]{1,40}$/.test(error) ? error : undefined;
}

const failed = (message: string, cause?: unknown) =>
  Object.assign(new AuthenticationError('LOGIN_FAILED', message), cause === undefined ? {} : { cause });

/**
 * Single sign-on for the token pages with OpenID Connect (Azure AD / Entra ID, Okta, Keycloak,
 * ADFS, …), built on `openid-client`: authorization code flow with PKCE (S256), `state` and
 * `nonce` checked, the ID token verified, its signature against the provider's published keys. The user name comes from `userClaim` (the userinfo
 * endpoint is asked when the ID token lacks it); groups optionally from `groupsClaim`.
 * @example
 * gate.pages({
 *   login: oidcLogin({
 *     issuer: 'https://login.microsoftonline.com/<tenant>/v2.0',
 *     clientId: process.env.OIDC_CLIENT_ID!,
 *     clientSecret: process.env.OIDC_CLIENT_SECRET!,
 *     redirectUri: 'https://git.example.com/tokens/login/callback',
 *   }),
 *   session: { secret: process.env.SESSION_SECRET! },
 * })
 */
export function oidcLogin(options: Readonly<OidcLoginOptions>): OidcLogin {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(
      'oidcLogin() takes an options object: { issuer, clientId, clientSecret, redirectUri }',
    );
  validateOptions<OidcLoginOptions>(options, OIDC_LOGIN_OPTIONS);
  for (const key of ['issuer', 'clientId', 'redirectUri'] as const)
    if (options[key] === undefined) throw new TypeError(`\`${key}\` is required`);
  const issuer = new URL(options.issuer);
  const redirectUri = new URL(options.redirectUri);
  const allowHttp = options.allowHttp ?? false;
  if (!allowHttp && (issuer.protocol === 'http:' || redirectUri.protocol === 'http:'))
    throw new TypeError(
      '`issuer` and `redirectUri` must be https: URLs (set `allowHttp: true` for a local provider)',
    );
  const userClaim = options.userClaim ?? 'preferred_username';
  const groupsClaim = options.groupsClaim;
  const scope = (options.scopes ?? ['openid', 'profile']).join(' ');
  const secret = options.clientSecret;
  const timeout = Math.ceil((options.timeoutMs ?? 10_000) / 1000);

  // openid-client is imported with the first login, not with the package. The provider is
  // discovered once; a failed discovery is retried by the next login instead of sticking.
  let configuration:
    | Promise<{ client: typeof OpenIdClient; settings: OpenIdClient.Configuration }>
    | undefined;
  const config = () => {
    configuration ??= import('openid-client').then(async (client) => {
      const auth =
        secret === undefined
          ? client.None()
          : options.tokenEndpointAuthMethod === 'client_secret_post'
            ? client.ClientSecretPost(secret)
            : client.ClientSecretBasic(secret);
      try {
        const settings = await client.discovery(issuer, options.clientId, undefined, auth, {
          timeout,
          // openid-client checks the ID token's claims but not its signature unless told to:
          // verify it against the provider's published keys (jwks_uri), as certification asks.
          execute: [client.enableNonRepudiationChecks, ...(allowHttp ? [client.allowInsecureRequests] : [])],
        });
        return { client, settings };
      } catch (err) {
        configuration = undefined;
        throw new UnavailableError(
          'UPSTREAM_UNAVAILABLE',
          'The single sign-on provider cannot be reached. Try again later.',
          { cause: err },
        );
      }
    });
    return configuration;
  };

  return Object.freeze({
    kind: 'oidc' as const,
    buttonLabel: options.buttonLabel ?? 'Log in with single sign-on',
    redirectUri,

    async begin() {
      const { client, settings } = await config();
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(settings, {
        redirect_uri: redirectUri.href,
        scope,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      return { url, pending: { state, nonce, verifier } };
    },

    async finish(query: string, pending: PendingLogin) {
      const params = new URLSearchParams(query);
      const refused = providerError(params);
      if (refused !== undefined) throw failed(`The single sign-on provider refused the login (${refused}).`);
      if (pending.state === undefined || pending.nonce === undefined || pending.verifier === undefined)
        throw failed('This login was not started here. Log in again.');
      const { client, settings } = await config();
      const current = new URL(redirectUri);
      current.search = params.toString();
      let claims: Record<string, unknown>;
      try {
        const tokens = await client.authorizationCodeGrant(settings, current, {
          pkceCodeVerifier: pending.verifier,
          expectedState: pending.state,
          expectedNonce: pending.nonce,
          idTokenExpected: true,
        });
        claims = { ...(tokens.claims() ?? {}) };
        const missing =
          claims[userClaim] === undefined || (groupsClaim !== undefined && !(groupsClaim in claims));
        if (missing && settings.serverMetadata().userinfo_endpoint !== undefined) {
          const info: Record<string, unknown> = {
            ...(await client.fetchUserInfo(settings, tokens.access_token, String(claims['sub']))),
          };
          // `email_verified` speaks for the `email` beside it: never mix one source's address with the other's flag.
          if (claims[userClaim] === undefined) delete claims['email_verified'];
          else delete info['email_verified'];
          claims = { ...info, ...claims };
        }
      } catch (err) {
        if (err instanceof TokenGateError) throw err;
        if (isNetworkFailure(err))
          throw new UnavailableError(
            'UPSTREAM_UNAVAILABLE',
            'The single sign-on provider cannot be reached. Try again later.',
            { cause: err },
          );
        throw failed('The single sign-on login could not be completed. Log in again.', err);
      }
      // An address the provider has not verified is anyone's to type in: not a user name.
      if (userClaim === 'email' && claims['email_verified'] !== true)
        throw failed('The single sign-on provider has not verified this e-mail address (`email_verified`).');
      let user: string;
      try {
        user = validateUser(claims[userClaim], userClaim);
      } catch {
        throw failed(`The single sign-on provider did not give a user name (claim \`${userClaim}\`).`);
      }
      const listed = groupsClaim === undefined ? undefined : claims[groupsClaim];
      // A group outside the naming rule (`bitbuc\u212Aet-admins`) is dropped: it grants nothing.
      const named = Array.isArray(listed) ? listed : typeof listed === 'string' ? [listed] : [];
      const groups = named.filter((g): g is string => groupNameProblem(g) === undefined);
      return { user, groups };
    },
  });
}
