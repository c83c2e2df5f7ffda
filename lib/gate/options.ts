import type { EventListener } from '../events.js';
import { compileTrustRules, type FederationRule } from '../federation/trust-rules.js';
import type { GroupsOption } from '../groups/group-resolver.js';
import {
  any,
  array,
  boolean,
  either,
  fail,
  func,
  headerName,
  integer,
  object,
  oneOf,
  record,
  type Shape,
  string,
  withMethods,
} from '../internal/options.js';
import { RATE_LIMIT_OPTIONS, type RateLimitOptions } from '../limits/options.js';
import { REQUIRE_SCOPE_OPTIONS } from '../middleware/require-scope.js';
import { TOKEN_RESTRICTIONS_OPTIONS } from '../middleware/token-restrictions.js';
import type { Scope } from '../model.js';
import { NOTIFY_OPTIONS, type NotifyOptions } from '../notify/options.js';
import { type MetricsOptions, metricsOption } from '../ops/metrics.js';
import { PUSH_PROTECTION_OPTIONS, type PushProtectionOptions } from '../scanning/push-protection.js';
import type { TokenStore } from '../stores/token-store.js';
import { THROTTLE_OPTIONS, type ThrottleOptions } from '../throttle/failure-throttle.js';
import { LOGIN_THROTTLE_OPTIONS, type LoginThrottleOptions } from '../throttle/login-throttle.js';
import { EXPIRY_POLICY, type ExpiryPolicy } from '../tokens/expiry-policy.js';
import type { TokenHasher } from '../tokens/hashers.js';
import { REMINDER_OPTIONS, type ReminderOptions } from '../tokens/reminders.js';
import type { CacheOptions } from '../tokens/verifier.js';
import { isUpstreamMode, type UpstreamMode } from '../upstream/bitbucket-access-tokens.js';
import { FORWARD_IDENTITY_OPTIONS, type ForwardIdentityOptions } from '../upstream/forward-identity.js';

/**
 * Who may do what, as lists of groups. Each: omitted = everyone, `[]` = no one.
 * @example
 * createTokenGate({
 *   groups: bitbucketGroups({ baseUrl, token: process.env.BITBUCKET_ADMIN_TOKEN! }),
 *   permissions: {
 *     useTokens: ['api-users'],
 *     createWriteTokens: ['developers'],
 *     manageOthers: ['bitbucket-admins'],
 *   },
 * });
 */
export interface Permissions {
  /** May authenticate with tokens at all. Default: everyone. */
  useTokens?: readonly string[];
  /** May create tokens. Default: everyone. */
  createTokens?: readonly string[];
  /** May create tokens with `write` scope. Default: everyone. */
  createWriteTokens?: readonly string[];
  /** May create, list, change and revoke other users' tokens. Default: `[]` (no one). */
  manageOthers?: readonly string[];
}

/**
 * Options of `createTokenGate`. Every option, at every depth, is checked at startup: a wrong
 * value or an unknown key throws a TypeError naming it (with a "did you mean" for typos).
 * @example
 * const options: TokenGateOptions = {
 *   store: new SqliteTokenStore({ path: './data/tokens.db' }),
 *   pepper: process.env.TOKEN_PEPPER!,
 *   ipAllowlist: ['10.0.0.0/8'],
 *   trustedProxies: ['10.0.0.5'],
 *   blockPasswordAuth: true,
 *   expiry: { defaultDays: 90, maxDays: 365 },
 * };
 * const gate = createTokenGate(options);
 */
export interface TokenGateOptions {
  /** Where tokens live. Default: a new `MemoryTokenStore` (tokens vanish on restart). */
  store?: TokenStore;
  /** `'sha256'` (default; HMAC-SHA256 with `pepper`), `'bcrypt'`, or your own `TokenHasher`. */
  hasher?: 'sha256' | 'bcrypt' | TokenHasher;
  /**
   * Server-side secret, kept outside the store: the HMAC key of the `sha256` hasher, and the key
   * that seals token records (`sha256` and `bcrypt`), so a write to the store cannot change what
   * a token may do. Default: a fixed public key, which protects nothing (docs/security.md).
   */
  pepper?: string | Buffer;
  /** Prefix of token strings. Default `'bbt'` (tokens look like `bbt_…`). */
  tokenPrefix?: string;
  /** Group memberships: a `GroupResolver` or a `{ user: [groups] }` map. Default: no one is in any group. */
  groups?: GroupsOption;
  /**
   * Which groups may use, create, create write and manage others' tokens. Default: everyone,
   * except `manageOthers` (no one).
   */
  permissions?: Permissions;
  /** Addresses, CIDR ranges and `first-last` ranges token requests may come from. Default: any. */
  ipAllowlist?: readonly string[];
  /** Apply the allowlist to password requests too. Default false. */
  ipAllowlistForPasswords?: boolean;
  /** Proxies whose client-address header is believed. Default: none. */
  trustedProxies?: readonly string[];
  /** Header with the client address, from trusted proxies. Default `'x-forwarded-for'`. */
  clientIpHeader?: string;
  /** Refuse Basic auth with a password (401, telling the user to use a token). Default false. */
  blockPasswordAuth?: boolean;
  /** Message for refused passwords. Default: tells the user to create and use an API token. */
  passwordMessage?: string;
  /** Requests without credentials: `'pass'` (default) or `'deny'` (401). */
  anonymous?: 'pass' | 'deny';
  /** Token lifetimes. Default: no expiry unless a token asks for one. */
  expiry?: ExpiryPolicy;
  /** Most live tokens one user may hold. Default 100. */
  maxTokensPerUser?: number;
  /** Verified-token cache. Default: 10,000 entries for 5 s. */
  cache?: CacheOptions;
  /** Deadline of every store call; past it the request fails closed (503). Default 2,000 ms. */
  storeTimeoutMs?: number;
  /**
   * How often the store is probed in the background once `gate.healthHandlers()` is called, so
   * that `/healthz` reports a probe at most this old (`/readyz` and `gate.health()` probe on
   * demand). One probe at a time, each bounded by `storeTimeoutMs`; 0 turns it off. Default 5,000 ms.
   */
  healthProbeIntervalMs?: number;
  /** Brute-force throttling of failed token attempts, or `false` to switch it off. Default on. */
  throttle?: ThrottleOptions | false;
  /**
   * Throttling of failed logins to the token pages (`bitbucketLogin` has its own `throttle`).
   * Default: 30 per address and 5 per address + user name in 15 minutes.
   */
  loginThrottle?: LoginThrottleOptions;
  /** Identity forwarded upstream (the default mode): header name and optional signed JWT. */
  identity?: ForwardIdentityOptions;
  /**
   * How tokens reach Bitbucket instead of the identity header: `bitbucketAccessTokens(...)`
   * backs each token with a Bitbucket HTTP access token of its owner and forwards that one, so a
   * stock Bitbucket needs nothing installed. Default: the identity header (`identity`).
   */
  upstream?: UpstreamMode;
  /** Other methods tokens may use, e.g. `{ PROPFIND: 'read' }`. Default: none (405). */
  extraMethods?: Readonly<Record<string, Scope>>;
  /** Path prefixes of git smart-HTTP and LFS URLs. Default `['/scm/']`. */
  gitPrefixes?: readonly string[];
  /** Path prefixes of REST URLs (for `resources` restrictions). Default `['/rest/']`. */
  restPrefixes?: readonly string[];
  /**
   * Paths a `resources`-restricted token may call although they name no repository. Default:
   * the owner's profile and the application properties.
   */
  unrestrictedPaths?: readonly string[];
  /** Expiry reminders (`token.expiring`, `token.expired` events), or `false`. Default on with `onEvent`. */
  reminders?: ReminderOptions | false;
  /** Also report `auth.succeeded` events. Default false. */
  auditSuccess?: boolean;
  /**
   * Let tokens reach Bitbucket's credential endpoints: adding SSH or GPG keys and access keys,
   * creating HTTP access tokens, OAuth 2.0 grants, setting passwords. Default false: those are
   * refused (403 `CREDENTIAL_ENDPOINT_REFUSED`), as Bitbucket refuses its own access tokens,
   * because what they create outlives a revoked token.
   */
  allowCredentialEndpoints?: boolean;
  /** Audit events; never receives a secret. Default: none. */
  onEvent?: EventListener;
  /**
   * Prometheus metrics through prom-client (an optional peer: `npm install prom-client`):
   * `true` for a registry of the gate's own, or `{ registry }` to add them to yours; serve them
   * with `gate.metricsHandler()`. Default off: then the request path does no metrics work at all.
   * @example createTokenGate({ metrics: true }); app.get('/metrics', gate.metricsHandler());
   */
  metrics?: boolean | MetricsOptions;
  /**
   * Trust rules for CI identity tokens (GitLab `id_tokens`, GitHub Actions, Jenkins, Bitbucket
   * Pipelines, Buildkite): a job exchanges its signed token at the OAuth token endpoint
   * (`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, RFC 8693) for a short-lived
   * API token limited to what the first matching rule allows. Default: none (no exchange).
   * @example
   * createTokenGate({
   *   store,
   *   federation: [
   *     {
   *       issuer: 'https://gitlab.example.com',
   *       audience: 'https://git.example.com',
   *       claims: { project_path: 'ops/deploy', ref_protected: 'true' },
   *       user: 'ci-deploy',
   *       scope: 'write',
   *       resources: ['OPS/deploy'],
   *     },
   *   ],
   * });
   */
  federation?: readonly FederationRule[];
  /**
   * Push protection: every `git push` through `protect()` is scanned for this gate's tokens and
   * refused when it holds a live one, which is revoked (`{ revoke: false }` only refuses), with a
   * `token.leaked` event; or `false`. Default on. See docs/secret-scanning.md.
   */
  pushProtection?: PushProtectionOptions | false;
  /**
   * Rate limits of token requests, per token and per user, counted across the fleet through the
   * store; 429 with `Retry-After` and `RateLimit` headers past them. Tokens may carry their own
   * `rateLimit` (at most `maxPerToken`), enforced with or without this option.
   * Default: none.
   * @example createTokenGate({ store, rateLimit: { perToken: { requests: 600, windowSeconds: 60 } } });
   */
  rateLimit?: RateLimitOptions;
  /**
   * Who is told about audit events besides `onEvent`: e-mail to owners and administrators
   * (`token.expiring` with a link to renew, `token.leaked`) and signed webhooks; once per fleet,
   * in the background, never with a secret. Turns expiry reminders on like `onEvent` does.
   * Default: none.
   */
  notify?: NotifyOptions;
}

const STORE_METHODS = ['put', 'get', 'listByUser', 'update', 'delete', 'touch', 'search'];
const groupList = array(string());
const orFalse = (check: (v: unknown, p: string) => void) => (value: unknown, path: string) => {
  if (value !== false) check(value, path);
};
const pepper = (value: unknown, path: string) => {
  if ((typeof value !== 'string' && !Buffer.isBuffer(value)) || value.length === 0)
    fail(path, 'must be a non-empty string or Buffer');
};

/** Every option of `createTokenGate`, with its check; the compiler keeps the keys in step with the type. */
export const GATE_OPTIONS: Shape<TokenGateOptions> = {
  store: withMethods(STORE_METHODS, 'a TokenStore'),
  hasher: either(
    oneOf(['sha256', 'bcrypt']),
    withMethods(['hash', 'verify'], "'sha256', 'bcrypt' or a TokenHasher"),
  ),
  pepper,
  tokenPrefix: any,
  groups: either(func, record(groupList)),
  permissions: object<Permissions>({
    useTokens: groupList,
    createTokens: groupList,
    createWriteTokens: groupList,
    manageOthers: groupList,
  }),
  ipAllowlist: any,
  ipAllowlistForPasswords: boolean,
  trustedProxies: any,
  clientIpHeader: headerName,
  blockPasswordAuth: boolean,
  passwordMessage: string(),
  anonymous: oneOf(['pass', 'deny']),
  expiry: object(EXPIRY_POLICY),
  maxTokensPerUser: integer(1, 100_000),
  cache: object<CacheOptions>({
    maxEntries: integer(0, 10_000_000),
    ttlMs: integer(1, 3_600_000),
    failureTtlMs: integer(1, 86_400_000),
  }),
  storeTimeoutMs: integer(1, 60_000),
  healthProbeIntervalMs: integer(0, 3_600_000),
  throttle: orFalse(object(THROTTLE_OPTIONS)),
  loginThrottle: object(LOGIN_THROTTLE_OPTIONS),
  identity: object(FORWARD_IDENTITY_OPTIONS),
  upstream: (value, path) => {
    if (!isUpstreamMode(value))
      fail(path, 'must be made by bitbucketAccessTokens({ baseUrl, encryptionKeys })');
  },
  extraMethods: REQUIRE_SCOPE_OPTIONS.extraMethods,
  gitPrefixes: TOKEN_RESTRICTIONS_OPTIONS.gitPrefixes,
  restPrefixes: TOKEN_RESTRICTIONS_OPTIONS.restPrefixes,
  unrestrictedPaths: TOKEN_RESTRICTIONS_OPTIONS.unrestrictedPaths,
  reminders: orFalse(object(REMINDER_OPTIONS)),
  auditSuccess: boolean,
  allowCredentialEndpoints: boolean,
  onEvent: func,
  metrics: metricsOption,
  federation: (value, path) => {
    compileTrustRules(value, path);
  },
  pushProtection: orFalse(object(PUSH_PROTECTION_OPTIONS)),
  rateLimit: object(RATE_LIMIT_OPTIONS),
  notify: object(NOTIFY_OPTIONS),
};
