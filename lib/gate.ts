import type { RequestHandler, Router } from 'express';
import { type EventListener, safeEmitter } from './events.js';
import { compilePermission, type GroupsOption, toGroupResolver } from './groups/group-resolver.js';
import { requestPath } from './http/respond.js';
import { createRouter, type RouterOptions } from './http/router.js';
import { compose } from './internal/compose.js';
import { listenForRevocations } from './internal/revocation-feed.js';
import { authenticateToken } from './middleware/authenticate-token.js';
import { blockPasswordAuth } from './middleware/block-password-auth.js';
import { clientIp, createClientIpResolver } from './middleware/client-ip.js';
import { extractCredentials } from './middleware/extract-credentials.js';
import { type ForwardIdentityOptions, forwardIdentity } from './middleware/forward-identity.js';
import { ipAllowlist } from './middleware/ip-allowlist.js';
import { requireGroups } from './middleware/require-groups.js';
import { requireScope } from './middleware/require-scope.js';
import type { Scope } from './model.js';
import { FailureThrottle, type ThrottleOptions } from './request/throttle.js';
import { MemoryTokenStore } from './stores/memory-token-store.js';
import type { TokenStore } from './stores/token-store.js';
import type { CacheOptions } from './tokens/cache.js';
import { assertTokenPrefix } from './tokens/format.js';
import { resolveHasher, type TokenHasher } from './tokens/hashers.js';
import { type ExpiryPolicy, TokenService, validateExpiryPolicy } from './tokens/service.js';

/** Who may do what, as lists of groups. Each: omitted = everyone, `[]` = no one. */
export interface Permissions {
  /** May authenticate with tokens at all. Default: everyone. */
  useTokens?: readonly string[];
  /** May create tokens. Default: everyone. */
  createTokens?: readonly string[];
  /** May create tokens with `write` scope. Default: everyone. */
  createWriteTokens?: readonly string[];
  /** May create, list, rename and revoke other users' tokens. Default: `[]` (no one). */
  manageOthers?: readonly string[];
}

export interface TokenGateOptions {
  /** Where tokens live. Default: a new `MemoryTokenStore`. */
  store?: TokenStore;
  /** `'sha256'` (default; HMAC-SHA256 with `pepper`), `'bcrypt'`, or your own `TokenHasher`. */
  hasher?: 'sha256' | 'bcrypt' | TokenHasher;
  /** HMAC key for the `sha256` hasher, kept outside the store. Default: a fixed public key. */
  pepper?: string | Buffer;
  /** Prefix of token strings. Default `'bbt'` (tokens look like `bbt_…`). */
  tokenPrefix?: string;
  /** Group memberships: a `GroupResolver` or a `{ user: [groups] }` map. Default: no one is in any group. */
  groups?: GroupsOption;
  permissions?: Permissions;
  /** Addresses and CIDR ranges token requests may come from. Default: any. */
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
  /** Verified-token cache. Default: 10,000 entries for 5 s. */
  cache?: CacheOptions;
  /** Deadline of every store call; past it the request fails closed (503). Default 2,000 ms. */
  storeTimeoutMs?: number;
  /** Brute-force throttling of failed attempts, or `false` to switch it off. Default on. */
  throttle?: ThrottleOptions | false;
  /** Identity forwarded upstream: header name and optional signed JWT. */
  identity?: ForwardIdentityOptions;
  /** Methods beyond the standard ones that tokens may use, with the scope each needs. */
  extraMethods?: Readonly<Record<string, Scope>>;
  /** Also report `auth.succeeded` events. Default false. */
  auditSuccess?: boolean;
  /** Audit events; never receives a secret. */
  onEvent?: EventListener;
}

export interface TokenGate {
  /** Create, verify, list, rename and revoke tokens from code. */
  readonly tokens: TokenService;
  /** The whole request path as one middleware, for the routes tokens may call. */
  protect(): RequestHandler;
  /** The management API (mount it behind a login). */
  router(options?: RouterOptions): Router;
  /** Stops listening for revocations and releases the store's timers. Does not close your Redis client. */
  close(): Promise<void>;
}

const KNOWN_OPTIONS = new Set<string>([
  'store',
  'hasher',
  'pepper',
  'tokenPrefix',
  'groups',
  'permissions',
  'ipAllowlist',
  'ipAllowlistForPasswords',
  'trustedProxies',
  'clientIpHeader',
  'blockPasswordAuth',
  'passwordMessage',
  'anonymous',
  'expiry',
  'cache',
  'storeTimeoutMs',
  'throttle',
  'identity',
  'extraMethods',
  'auditSuccess',
  'onEvent',
]);
const PERMISSION_NAMES = new Set(['useTokens', 'createTokens', 'createWriteTokens', 'manageOthers']);

function assertStore(store: unknown): asserts store is TokenStore {
  const required = ['put', 'get', 'listByUser', 'update', 'delete', 'touch', 'search'] as const;
  const missing = required.filter(
    (m) => typeof (store as Record<string, unknown> | null)?.[m] !== 'function',
  );
  if (missing.length > 0)
    throw new TypeError(`\`store\` must implement TokenStore (missing ${missing.join(', ')})`);
}

function assertBoolean(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'boolean')
    throw new TypeError(`\`${name}\` must be true or false`);
}

/**
 * Builds a token gate from one options object: the token service, the request path
 * (`protect()`) and the management API (`router()`). Invalid options throw here, naming the option.
 * @example
 * const gate = createTokenGate({ blockPasswordAuth: true, ipAllowlist: ['10.0.0.0/8'] });
 * app.use(['/rest', '/scm'], gate.protect());
 * app.use('/tokens', yourLogin, gate.router());
 */
export function createTokenGate(options: Readonly<TokenGateOptions> = {}): TokenGate {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('createTokenGate() takes an options object');
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new TypeError(`Unknown option \`${key}\``);
  }
  for (const key of Object.keys(options.permissions ?? {})) {
    if (!PERMISSION_NAMES.has(key)) throw new TypeError(`Unknown option \`permissions.${key}\``);
  }
  for (const key of ['ipAllowlistForPasswords', 'blockPasswordAuth', 'auditSuccess'] as const)
    assertBoolean(options[key], key);
  const store = options.store ?? new MemoryTokenStore();
  const ownsStore = options.store === undefined;
  assertStore(store);
  const tokenPrefix = options.tokenPrefix ?? 'bbt';
  assertTokenPrefix(tokenPrefix);
  const storeTimeoutMs = options.storeTimeoutMs ?? 2_000;
  if (!Number.isInteger(storeTimeoutMs) || storeTimeoutMs < 1)
    throw new TypeError('`storeTimeoutMs` must be a positive integer');
  const expiry = validateExpiryPolicy(options.expiry);
  const emit = safeEmitter(options.onEvent);
  const onEvent = options.onEvent === undefined ? undefined : emit;
  const groups = toGroupResolver(options.groups);
  const permissions = options.permissions ?? {};
  const useTokens = compilePermission(permissions.useTokens, 'permissions.useTokens');
  const routerPermissions = {
    createTokens: compilePermission(permissions.createTokens, 'permissions.createTokens'),
    createWriteTokens: compilePermission(permissions.createWriteTokens, 'permissions.createWriteTokens'),
    manageOthers: compilePermission(permissions.manageOthers ?? [], 'permissions.manageOthers'),
  };
  const tokens = new TokenService({
    store,
    hasher: resolveHasher(options.hasher, options.pepper),
    tokenPrefix,
    expiry,
    storeTimeoutMs,
    ...(options.cache === undefined ? {} : { cache: options.cache }),
  });
  const ipOptions = {
    ...(options.trustedProxies === undefined ? {} : { trustedProxies: options.trustedProxies }),
    ...(options.clientIpHeader === undefined ? {} : { clientIpHeader: options.clientIpHeader }),
  };
  const resolveClientIp = createClientIpResolver(ipOptions);
  const throttle =
    options.throttle === false ? undefined : new FailureThrottle(store, tokenPrefix, options.throttle ?? {});
  const withEvents = onEvent === undefined ? {} : { onEvent };

  const steps: RequestHandler[] = [
    clientIp(ipOptions),
    extractCredentials({ tokenPrefix, anonymous: options.anonymous ?? 'pass', ...withEvents }),
  ];
  if (options.blockPasswordAuth) {
    steps.push(
      blockPasswordAuth({
        ...withEvents,
        ...(options.passwordMessage ? { message: options.passwordMessage } : {}),
      }),
    );
  }
  steps.push(authenticateToken({ tokens, ...(throttle ? { throttle } : {}), ...withEvents }));
  if (options.ipAllowlist !== undefined) {
    steps.push(
      ipAllowlist({
        allow: options.ipAllowlist,
        forPasswords: options.ipAllowlistForPasswords ?? false,
        ...ipOptions,
        ...withEvents,
      }),
    );
  }
  if (!useTokens.everyone) {
    steps.push(requireGroups({ groups: permissions.useTokens ?? [], resolver: groups, ...withEvents }));
  }
  steps.push(
    requireScope({ ...(options.extraMethods ? { extraMethods: options.extraMethods } : {}), ...withEvents }),
  );
  steps.push(forwardIdentity(options.identity ?? {}));
  if (options.auditSuccess) {
    steps.push(function auditSuccess(req, _res, next) {
      const auth = req.auth;
      if (auth?.kind === 'token' && auth.token) {
        emit({
          type: 'auth.succeeded',
          time: new Date().toISOString(),
          clientIp: auth.clientIp ?? null,
          method: req.method,
          path: requestPath(req),
          tokenId: auth.token.id,
          user: auth.token.user,
          scope: auth.token.scope,
        });
      }
      next();
    });
  }
  const protect = compose(steps);

  // Revocations made by other instances drop our cached verifications.
  const subscription = listenForRevocations(store, tokens);

  return {
    tokens,
    protect: (...args: unknown[]) => {
      // `app.use(gate.protect)` without the call would hang every request: say so at once.
      if (args.length > 0) throw new TypeError('Mount `gate.protect()` (called), not `gate.protect`');
      return protect;
    },
    router: (routerOptions?: RouterOptions, ...rest: unknown[]) => {
      if (rest.length > 0) throw new TypeError('Mount `gate.router()` (called), not `gate.router`');
      return createRouter(
        {
          tokens,
          groups,
          permissions: routerPermissions,
          expiryMaxDays: expiry.maxDays,
          resolveClientIp,
          emit,
        },
        routerOptions,
      );
    },
    async close() {
      await subscription.stop();
      if (ownsStore) await store.close?.();
    },
  };
}
