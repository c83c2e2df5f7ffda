import {
  array,
  boolean,
  fail,
  integer,
  object,
  type Shape,
  string,
  validateOptions,
} from '../internal/options.js';
import type { TokenStore } from '../stores/token-store.js';
import type { GrantStore } from './grant-state.js';

/**
 * A registered OAuth client. Every client is public (native apps such as git credential
 * helpers hold no secret): it proves nothing but its id, so PKCE and the redirect URI bind
 * each code to the process that asked for it.
 * @example
 * const client: OAuthClient = { id: 'git', name: 'Git' };
 */
export interface OAuthClient {
  /** The `client_id`: 1 to 100 visible ASCII characters, e.g. `'git'`. */
  id: string;
  /** Shown on the consent page and as the name of the tokens it receives. Default: the id. */
  name?: string;
  /**
   * Redirect URIs accepted exactly, besides loopback ones (`http://127.0.0.1:<any port>`,
   * `http://[::1]:<any port>`, `http://localhost:<any port>`, any path), which every client
   * may use (RFC 8252 §7.3). Default: none.
   */
  redirectUris?: readonly string[];
}

/**
 * Options of `gate.oauth()`: the OAuth 2.0 authorization server that lets git credential
 * helpers (git-credential-oauth, Git Credential Manager) obtain short-lived API tokens through
 * the token pages' login, with no secret in git's configuration.
 * @example
 * app.use('/oauth', gate.oauth({ clients: [{ id: 'git', name: 'Git' }], accessTokenTtlMs: 4 * 3_600_000 }));
 * app.get('/.well-known/oauth-authorization-server', gate.oauthMetadata());
 */
export interface OAuthOptions {
  /** Registered clients. Default `[{ id: 'git', name: 'Git' }]`. */
  clients?: readonly OAuthClient[];
  /**
   * The public URL of the app (the issuer), e.g. `https://git.example.com/`. Default: taken
   * from each request (`Host`), as the token pages do.
   */
  publicUrl?: string;
  /** Where `gate.pages()` is mounted, relative to `publicUrl`. Default `'tokens/'`. */
  pagesPath?: string;
  /** Where `gate.oauth()` is mounted, relative to `publicUrl`. Default `'oauth/'`. */
  endpointsPath?: string;
  /** Lifetime of the API tokens issued (never beyond `expiry.maxDays`). Default 28,800,000 ms (8 hours). */
  accessTokenTtlMs?: number;
  /** Issue refresh tokens (rotated on every use). Default true. */
  refreshTokens?: boolean;
  /** A refresh token unused this long dies. Default 604,800,000 ms (7 days). */
  refreshIdleMs?: number;
  /** A sign-in's refresh tokens die this long after it, however busy (at most 365 days, never beyond `expiry.maxDays`). Default 2,592,000,000 ms (30 days). */
  refreshMaxMs?: number;
  /** How long a device code may wait for the person to approve it. Default 600,000 ms (10 minutes). */
  deviceCodeTtlMs?: number;
  /** Seconds a device waits between two polls of the token endpoint. Default 5. */
  devicePollIntervalS?: number;
  /**
   * Device authorizations one client address (an IPv6 /64) may start per minute, on each
   * instance; more get 429. Each stores two values for `deviceCodeTtlMs`. Default 30.
   */
  maxDeviceAuthorizationsPerIp?: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const CLIENT_ID = /^[\x21-\x7e]{1,100}$/;
const RELATIVE_PATH = /^(?:[A-Za-z0-9._~-]+\/)*$/;

const redirectUri = (value: unknown, path: string) => {
  string({ maxLength: 2_000 })(value, path);
  let url: URL;
  try {
    url = new URL(value as string);
  } catch {
    fail(path, 'must be an absolute URI such as `https://app.example.com/callback`');
  }
  if (url.hash !== '') fail(path, 'must have no fragment (RFC 6749 §3.1.2)');
  if (url.protocol === 'http:') fail(path, 'must not be plain http: (loopback ones are always allowed)');
};

const CLIENT: Shape<OAuthClient> = {
  id: string({ pattern: CLIENT_ID }),
  name: string({ minLength: 1, maxLength: 60 }),
  redirectUris: array(redirectUri),
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

const relativePath = (value: unknown, path: string) => {
  string({ maxLength: 200 })(value, path);
  if (!RELATIVE_PATH.test(value as string))
    fail(path, "must be a relative path ending in `/`, such as `'oauth/'`");
};

export const OAUTH_OPTIONS: Shape<OAuthOptions> = {
  clients: (value, path) => {
    array(object(CLIENT), { minLength: 1 })(value, path);
    const seen = new Set<string>();
    for (const [i, client] of (value as OAuthClient[]).entries()) {
      if (client.id === undefined) fail(`${path}[${i}].id`, 'is required');
      if (seen.has(client.id)) fail(`${path}[${i}].id`, `repeats the client id ${JSON.stringify(client.id)}`);
      seen.add(client.id);
    }
  },
  publicUrl,
  pagesPath: relativePath,
  endpointsPath: relativePath,
  accessTokenTtlMs: integer(300_000, 30 * DAY),
  refreshTokens: boolean,
  refreshIdleMs: integer(300_000, 365 * DAY),
  refreshMaxMs: integer(300_000, 365 * DAY),
  deviceCodeTtlMs: integer(60_000, 1_800_000),
  devicePollIntervalS: integer(1, 60),
  maxDeviceAuthorizationsPerIp: integer(1, 1_000_000),
};

/** `OAuthOptions` with every default filled in, resolved once. */
export interface OAuthConfig {
  clients: ReadonlyMap<
    string,
    Required<Pick<OAuthClient, 'id' | 'name'>> & { redirectUris: readonly string[] }
  >;
  publicUrl: URL | undefined;
  pagesPath: string;
  endpointsPath: string;
  accessTokenTtlMs: number;
  refreshTokens: boolean;
  refreshIdleMs: number;
  refreshMaxMs: number;
  deviceCodeTtlMs: number;
  devicePollIntervalS: number;
  maxDeviceAuthorizationsPerIp: number;
}

/** Fills in defaults; `maxDays` (the expiry policy) caps every lifetime. */
export function resolveOAuthOptions(
  options: Readonly<OAuthOptions>,
  maxDays: number | undefined,
): OAuthConfig {
  const cap = maxDays === undefined ? Number.POSITIVE_INFINITY : maxDays * DAY;
  const clients = options.clients ?? [{ id: 'git', name: 'Git' }];
  const refreshMaxMs = Math.min(options.refreshMaxMs ?? 30 * DAY, cap);
  return {
    clients: new Map(
      clients.map((c) => [
        c.id,
        { id: c.id, name: c.name ?? c.id, redirectUris: [...(c.redirectUris ?? [])] },
      ]),
    ),
    publicUrl: options.publicUrl === undefined ? undefined : new URL(options.publicUrl),
    pagesPath: options.pagesPath ?? 'tokens/',
    endpointsPath: options.endpointsPath ?? 'oauth/',
    accessTokenTtlMs: Math.min(options.accessTokenTtlMs ?? 8 * HOUR, cap),
    refreshTokens: options.refreshTokens ?? true,
    refreshIdleMs: Math.min(options.refreshIdleMs ?? 7 * DAY, refreshMaxMs),
    refreshMaxMs,
    deviceCodeTtlMs: options.deviceCodeTtlMs ?? 600_000,
    devicePollIntervalS: options.devicePollIntervalS ?? 5,
    maxDeviceAuthorizationsPerIp: options.maxDeviceAuthorizationsPerIp ?? 30,
  };
}

/** True when the store can hold the OAuth server's state. */
export function holdsGrants(store: TokenStore): store is TokenStore & GrantStore {
  return (
    typeof store.putValue === 'function' &&
    typeof store.getValue === 'function' &&
    typeof store.takeValue === 'function'
  );
}

/**
 * `gate.oauth()`'s options, checked and resolved when it is called: the server itself loads
 * afterwards (see `gate/start-oauth-server.ts`), so every mistake still throws at startup.
 */
export function oauthConfigOf(
  options: unknown,
  gate: { store: TokenStore; accessTokenMode: boolean; maxDays: number | undefined },
): OAuthConfig {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('gate.oauth() takes an options object');
  validateOptions<OAuthOptions>(options, OAUTH_OPTIONS);
  if (gate.accessTokenMode)
    throw new TypeError(
      '`gate.oauth()` cannot issue tokens in access-token mode (`upstream: bitbucketAccessTokens(...)`): each token there needs the owner’s Bitbucket credentials',
    );
  if (!holdsGrants(gate.store))
    throw new TypeError(
      '`gate.oauth()` needs a store with keyed values (`putValue`, `getValue`, `takeValue`): every built-in store has them',
    );
  return resolveOAuthOptions(options, gate.maxDays);
}
