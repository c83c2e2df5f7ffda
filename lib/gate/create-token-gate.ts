import type { RequestHandler, Router } from 'express';
import { type ClientIpOptions, createClientIpResolver } from '../client-address/resolver.js';
import { DEFAULT_STORE_TIMEOUT_MS, DEFAULT_TOKEN_PREFIX } from '../defaults.js';
import { type EventListener, safeEmitter } from '../events.js';
import { assertFederationPossible, compileTrustRules } from '../federation/trust-rules.js';
import { compilePermission, type GroupResolver, toGroupResolver } from '../groups/group-resolver.js';
import { type ManagementContext, resolveCaller } from '../http/management-context.js';
import { createRouter, type RouterOptions } from '../http/router.js';
import { defined } from '../internal/defined.js';
import { type Lazy, lazy } from '../internal/lazy.js';
import { lazyRouter } from '../internal/lazy-router.js';
import { validateOptions } from '../internal/options.js';
import { checkRateLimitOptions } from '../limits/options.js';
import { Notifier } from '../notify/notifier.js';
import type { GrantStore } from '../oauth/grant-state.js';
import { type OAuthOptions, oauthConfigOf } from '../oauth/options.js';
import type { OAuthServer } from '../oauth/server.js';
import { type GateHealth, type HealthHandlers, HealthMonitor } from '../ops/health.js';
import { instrumentedStore, storeKind } from '../ops/instrumented-store.js';
import { GateMetrics } from '../ops/metrics.js';
import { checkPagesOptions, type PagesOptions } from '../pages/options.js';
import { pushProtectionStep } from '../scanning/push-protection.js';
import {
  checkRevocationEndpointOptions,
  type RevocationEndpointOptions,
} from '../scanning/revocation-options.js';
import { MemoryTokenStore } from '../stores/memory-token-store.js';
import type { TokenStore } from '../stores/token-store.js';
import { LoginThrottle } from '../throttle/login-throttle.js';
import { checkExpiryPolicy } from '../tokens/expiry-policy.js';
import { assertTokenPrefix } from '../tokens/format.js';
import { resolveHasher } from '../tokens/hashers.js';
import { ExpiryReminders } from '../tokens/reminders.js';
import { listenForRevocations } from '../tokens/revocation-feed.js';
import { warnPublicSeal } from '../tokens/seal.js';
import { TokenService, verifierOf } from '../tokens/service.js';
import { type AttachedUpstream, attachUpstream } from '../upstream/bitbucket-access-tokens.js';
import { GATE_OPTIONS, type TokenGateOptions } from './options.js';
import { buildRequestPath } from './request-path.js';
import { type StartOAuthDeps, startOAuthServer } from './start-oauth-server.js';

export type { GateHealth, HealthHandlers, RevocationFeedHealth, StoreHealth } from '../ops/health.js';
export type { PushProtectionOptions } from '../scanning/push-protection.js';
export type { RevocationEndpointOptions } from '../scanning/revocation-options.js';
export type { Permissions, TokenGateOptions } from './options.js';

/**
 * What `createTokenGate` returns: the token service, the request path, the management API,
 * the token pages, metrics, health checks and `close()`.
 * @example
 * const gate: TokenGate = createTokenGate({ blockPasswordAuth: true });
 * app.use('/tokens/api', bitbucketLogin({ baseUrl }), gate.router());
 * app.use(['/rest', '/scm'], gate.protect(), forwardTo(baseUrl));
 * process.once('SIGTERM', () => void gate.close());
 */
export interface TokenGate {
  /** Create, verify, list, change, rotate and revoke tokens from code. */
  readonly tokens: TokenService;
  /**
   * The whole request path as one middleware, for the routes tokens may call: clientIp →
   * extractCredentials → blockPasswordAuth → ipAllowlist → authenticateToken →
   * tokenRestrictions → requireGroups → requireScope → forwardIdentity (or the Bitbucket access
   * token) → record the use.
   */
  protect(): RequestHandler;
  /**
   * The management API (JSON): create, list, read, change, rotate, copy and revoke tokens.
   * Mount it behind a login such as `bitbucketLogin`.
   */
  router(options?: RouterOptions): Router;
  /**
   * Express handler for `/metrics` (Prometheus text format). Needs `metrics: true` (or
   * `{ registry }`); throws a TypeError without it.
   * @example app.get('/metrics', gate.metricsHandler());
   */
  metricsHandler(): RequestHandler;
  /**
   * Liveness and readiness: `live` while the gate is open; `ready` when the store also answers
   * a probe within `storeTimeoutMs` and the revocation feed is connected.
   * @example if (!(await gate.health()).ready) console.warn('token store unreachable');
   */
  health(): Promise<GateHealth>;
  /**
   * Handlers for `/healthz` (liveness: answers at once, never waits for the store) and
   * `/readyz` (readiness: probes the store): 200 or 503, the `health()` JSON, `Cache-Control: no-store`.
   * @example
   * const health = gate.healthHandlers();
   * app.get('/healthz', health.live);
   * app.get('/readyz', health.ready);
   */
  healthHandlers(): HealthHandlers;
  /** The token pages: log in, create, copy once, rotate and revoke tokens; the token manager. */
  pages(options: PagesOptions): Router;
  /**
   * The OAuth 2.0 authorization server for git credential helpers (git-credential-oauth, Git
   * Credential Manager): `POST token`, `POST device_authorization`, `POST revoke` and the RFC
   * 8414 metadata. Its browser steps (consent, device code entry) are token pages, at
   * `<pages>/oauth/authorize` and `<pages>/device`. Tokens it issues are ordinary API tokens.
   * Call it once.
   * @example
   * app.use('/tokens', gate.pages({ login, session }));
   * app.use('/oauth', gate.oauth({ clients: [{ id: 'git', name: 'Git' }] }));
   * app.get('/.well-known/oauth-authorization-server', gate.oauthMetadata());
   */
  oauth(options?: OAuthOptions): Router;
  /** The RFC 8414 metadata document's handler, for the host root. Needs `gate.oauth()` first. */
  oauthMetadata(): RequestHandler;
  /**
   * The revocation endpoint for found tokens (after GitHub's credential revocation API): no
   * login, up to 1,000 tokens per POST, always `202`; each live token is revoked everywhere and
   * reported (`token.leaked`). Mount it where anyone may reach it, before the token pages.
   * @example app.post('/tokens/leaked', gate.revocationEndpoint());
   */
  revocationEndpoint(options?: RevocationEndpointOptions): RequestHandler;
  /**
   * Stops timers and listening for revocations, and closes the store the gate made itself
   * (when you gave none). Does not close a store (or client) you passed in.
   */
  close(): Promise<void>;
}

/** The user's listener and the notifier's, each safe on its own; undefined when there is neither. */
function withNotifier(
  user: EventListener | undefined,
  notifier: Notifier | undefined,
): EventListener | undefined {
  if (notifier === undefined) return user === undefined ? undefined : safeEmitter(user);
  const notify = safeEmitter(notifier.listener);
  if (user === undefined) return notify;
  const own = safeEmitter(user);
  return (event) => {
    own(event);
    notify(event);
  };
}

/** Guards against `app.use(gate.protect)`, written without the call, which would hang every request. */
function called<T>(name: string, make: (options?: never) => T) {
  return (...args: unknown[]): T => {
    const [first, ...rest] = args;
    if (rest.length > 0 || (typeof first === 'object' && first !== null && 'socket' in first))
      throw new TypeError(`Mount \`gate.${name}()\` (called), not \`gate.${name}\``);
    return make(first as never);
  };
}

/**
 * Builds a token gate from one options object: the token service, the request path
 * (`protect()`), the management API (`router()`) and the token pages (`pages()`). Invalid
 * options throw here, naming the option and suggesting the right name for a typo.
 * @example
 * const gate = createTokenGate({ blockPasswordAuth: true, ipAllowlist: ['10.0.0.0/8'] });
 * app.use(['/rest', '/scm'], gate.protect());
 * app.use('/tokens', bitbucketLogin({ baseUrl }), gate.router());
 */
export function createTokenGate(options: Readonly<TokenGateOptions> = {}): TokenGate {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('createTokenGate() takes an options object');
  validateOptions<TokenGateOptions>(options, GATE_OPTIONS);
  const tokenPrefix = options.tokenPrefix ?? DEFAULT_TOKEN_PREFIX;
  assertTokenPrefix(tokenPrefix);
  const expiry = options.expiry ?? {};
  checkExpiryPolicy(expiry);
  const maxRateLimit = options.rateLimit === undefined ? undefined : checkRateLimitOptions(options.rateLimit);
  const hasher = resolveHasher(options.hasher, options.pepper);
  if (hasher.seal === undefined) warnPublicSeal();
  const givenStore: TokenStore = options.store ?? new MemoryTokenStore();
  const ownsStore = options.store === undefined;
  const kind = storeKind(givenStore);
  const storeTimeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  // Metrics off: nothing below is wrapped or counted, and prom-client is never loaded.
  const metrics =
    options.metrics === undefined || options.metrics === false
      ? undefined
      : new GateMetrics(options.metrics, kind);
  const store =
    metrics === undefined ? givenStore : instrumentedStore(givenStore, metrics.storeObserver, storeTimeoutMs);
  // The notification sinks listen beside the user's listener (and load nodemailer only when asked).
  const notifier =
    options.notify === undefined ? undefined : new Notifier(options.notify, store, tokenPrefix);
  const onEvent = withNotifier(options.onEvent, notifier);
  const userEmit: EventListener = onEvent ?? (() => {});
  const emit = metrics === undefined ? userEmit : metrics.tallies.managementListener(userEmit);
  const groups = toGroupResolver(options.groups);
  const permissions = options.permissions ?? {};
  const ipOptions: ClientIpOptions = defined({
    trustedProxies: options.trustedProxies,
    clientIpHeader: options.clientIpHeader,
  });
  const resolveClientIp = createClientIpResolver(ipOptions);
  if (options.upstream !== undefined && options.identity !== undefined)
    throw new TypeError(
      '`identity` configures the identity header, which `upstream: bitbucketAccessTokens(...)` replaces: give one of them',
    );
  const upstream: AttachedUpstream | undefined =
    options.upstream === undefined
      ? undefined
      : attachUpstream(options.upstream, {
          store,
          storeTimeoutMs,
          emit,
          // Its refusals are the request path's: counted with them when metrics are on.
          onEvent: metrics === undefined ? onEvent : metrics.tallies.requestPathListener(onEvent),
        });

  const tokens = new TokenService({
    store,
    hasher,
    tokenPrefix,
    expiry,
    onEvent: emit,
    ...defined({
      cache: options.cache,
      storeTimeoutMs: options.storeTimeoutMs,
      maxTokensPerUser: options.maxTokensPerUser,
      upstream: upstream?.hook,
      maxRateLimit,
    }),
  });
  const verifier = verifierOf(tokens);
  // Checked now; the exchange itself loads with the OAuth server, whose token endpoint serves it.
  const federation = options.federation === undefined ? [] : compileTrustRules(options.federation);
  if (federation.length > 0) assertFederationPossible(store, tokens.upstreamCredentialsRequired);
  if (metrics !== undefined) verifier.observe(metrics.verifyObserver);
  const protect = buildRequestPath(options, {
    store,
    storeTimeoutMs,
    tokens,
    verifier,
    groups,
    ipOptions,
    onEvent,
    tallies: metrics?.tallies,
    ...defined({ upstreamStep: upstream?.requestStep }),
    pushProtection:
      options.pushProtection === false
        ? undefined
        : pushProtectionStep(options.pushProtection ?? {}, { tokens, emit }),
  });
  const loginThrottle = new LoginThrottle(store, options.loginThrottle);
  const management: ManagementContext = {
    tokens,
    groups,
    permissions: {
      createTokens: compilePermission(permissions.createTokens, 'permissions.createTokens'),
      createWriteTokens: compilePermission(permissions.createWriteTokens, 'permissions.createWriteTokens'),
      manageOthers: compilePermission(permissions.manageOthers ?? [], 'permissions.manageOthers'),
    },
    expiry,
    resolveClientIp,
    emit,
    loginThrottle,
  };

  // Revocations made by other instances drop our cached verifications.
  const feed = listenForRevocations(store, verifier);
  metrics?.watch({ verifier, feed, loginThrottle, notifications: notifier });
  let open = true;
  const health = new HealthMonitor({
    store: givenStore,
    kind,
    feed,
    timeoutMs: storeTimeoutMs,
    isOpen: () => open,
    intervalMs: options.healthProbeIntervalMs ?? 5_000,
  });
  // Loading from the first `gate.oauth()` call on (see start-oauth-server.ts).
  let oauthServer: Lazy<OAuthServer> | undefined;

  const reminders =
    options.reminders === false || onEvent === undefined || store.expiringBetween === undefined
      ? undefined
      : new ExpiryReminders(store, emit, options.reminders ?? {});

  return {
    tokens,
    protect: called('protect', () => protect),
    router: called('router', (routerOptions?: RouterOptions) => createRouter(management, routerOptions)),
    metricsHandler: called('metricsHandler', () => {
      if (metrics === undefined)
        throw new TypeError('`gate.metricsHandler()` needs `createTokenGate({ metrics: true })`');
      return metrics.handler();
    }),
    health: () => health.check(),
    healthHandlers: called('healthHandlers', () => health.handlers()),
    pages: called('pages', (pagesOptions?: PagesOptions) => {
      checkPagesOptions(pagesOptions!);
      return lazyRouter(async () => {
        const [{ createPagesRouter }, { oauthPageRoutes }] = await Promise.all([
          import('../pages/router.js'),
          import('../oauth/page-routes.js'),
        ]);
        return createPagesRouter(management, pagesOptions!, (router, kit) =>
          oauthPageRoutes(router, kit, () => oauthServer?.get()),
        );
      });
    }),
    oauth: called('oauth', (oauthOptions?: OAuthOptions) => {
      if (oauthServer !== undefined)
        throw new TypeError('Call `gate.oauth()` once, and mount its router where you need it');
      const config = oauthConfigOf(oauthOptions ?? {}, {
        store,
        accessTokenMode: tokens.upstreamCredentialsRequired,
        maxDays: expiry.maxDays,
      });
      const deps: StartOAuthDeps = {
        tokens,
        store: store as TokenStore & GrantStore, // oauthConfigOf checked it holds grants
        resolveClientIp,
        federation,
        storeTimeoutMs,
        emit,
        mayIssue: async (grant) => {
          const claimed = grant.claimGroups ?? [];
          const groups: GroupResolver =
            claimed.length === 0
              ? management.groups
              : async (name) => [...(await management.groups(name)), ...claimed];
          const caller = await resolveCaller({ ...management, groups }, grant.user);
          return grant.scope === 'write' ? caller.mayCreateWrite : caller.mayCreate;
        },
      };
      const server = lazy(() => startOAuthServer(config, deps));
      oauthServer = server;
      return lazyRouter(async () => (await server.get()).router());
    }),
    oauthMetadata: called('oauthMetadata', () => {
      const server = oauthServer;
      if (server === undefined) throw new TypeError('`gate.oauthMetadata()` needs `gate.oauth()` first');
      return lazyRouter(async () => (await server.get()).metadataHandler());
    }),
    revocationEndpoint: called('revocationEndpoint', (endpointOptions: RevocationEndpointOptions = {}) => {
      checkRevocationEndpointOptions(endpointOptions);
      const parts = {
        tokens,
        emit,
        resolveClientIp,
        // Read at each report: `gate.oauth()` may be called after this.
        endRefreshFamily: async (token: string) =>
          oauthServer === undefined ? null : (await oauthServer.get()).issuer.endLeakedFamily(token),
      };
      return lazyRouter(async () =>
        (await import('../scanning/revocation-endpoint.js')).revocationEndpoint(parts, endpointOptions),
      );
    }),
    async close() {
      open = false;
      health.stop();
      metrics?.close();
      reminders?.stop();
      notifier?.close();
      upstream?.close();
      await feed.stop();
      await verifier.close();
      if (ownsStore) await store.close?.();
    },
  };
}
