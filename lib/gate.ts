import type { RequestHandler, Router } from 'express';
import { type EventListener, safeEmitter } from './events.js';
import { GATE_OPTIONS, type TokenGateOptions } from './gate/options.js';
import { buildRequestPath } from './gate/request-path.js';
import { compilePermission, toGroupResolver } from './groups/group-resolver.js';
import { LoginThrottle } from './http/login-throttle.js';
import type { ManagementContext } from './http/management-context.js';
import { createRouter, type RouterOptions } from './http/router.js';
import { validateOptions } from './internal/options.js';
import { checkRateLimitOptions } from './limits/options.js';
import { Notifier } from './notify/notifier.js';
import { type GateHealth, type HealthHandlers, HealthMonitor } from './ops/health.js';
import { instrumentedStore, storeKind } from './ops/instrumented-store.js';
import { GateMetrics } from './ops/metrics.js';
import type { PagesOptions } from './pages/options.js';
import { createPagesRouter } from './pages/router.js';
import { type ClientIpOptions, createClientIpResolver } from './request/client-address.js';
import { MemoryTokenStore } from './stores/memory-token-store.js';
import type { TokenStore } from './stores/token-store.js';
import { checkExpiryPolicy } from './tokens/expiry-policy.js';
import { assertTokenPrefix } from './tokens/format.js';
import { resolveHasher } from './tokens/hashers.js';
import { ExpiryReminders } from './tokens/reminders.js';
import { listenForRevocations } from './tokens/revocation-feed.js';
import { TokenService, verifierOf } from './tokens/service.js';
import { type AttachedUpstream, attachUpstream } from './upstream/bitbucket-access-tokens.js';

export type { Permissions, TokenGateOptions } from './gate/options.js';
export type { GateHealth, HealthHandlers, RevocationFeedHealth, StoreHealth } from './ops/health.js';

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
  const tokenPrefix = options.tokenPrefix ?? 'bbt';
  assertTokenPrefix(tokenPrefix);
  const expiry = options.expiry ?? {};
  checkExpiryPolicy(expiry);
  const maxRateLimit = options.rateLimit === undefined ? undefined : checkRateLimitOptions(options.rateLimit);
  const hasher = resolveHasher(options.hasher, options.pepper);
  const givenStore: TokenStore = options.store ?? new MemoryTokenStore();
  const ownsStore = options.store === undefined;
  const kind = storeKind(givenStore);
  const storeTimeoutMs = options.storeTimeoutMs ?? 2_000;
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
  const ipOptions: ClientIpOptions = {
    ...(options.trustedProxies === undefined ? {} : { trustedProxies: options.trustedProxies }),
    ...(options.clientIpHeader === undefined ? {} : { clientIpHeader: options.clientIpHeader }),
  };
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
          storeTimeoutMs: options.storeTimeoutMs ?? 2_000,
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
    ...(options.cache === undefined ? {} : { cache: options.cache }),
    ...(options.storeTimeoutMs === undefined ? {} : { storeTimeoutMs: options.storeTimeoutMs }),
    ...(options.maxTokensPerUser === undefined ? {} : { maxTokensPerUser: options.maxTokensPerUser }),
    ...(upstream === undefined ? {} : { upstream: upstream.hook }),
    ...(maxRateLimit === undefined ? {} : { maxRateLimit }),
  });
  const verifier = verifierOf(tokens);
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
    ...(upstream === undefined ? {} : { upstreamStep: upstream.requestStep }),
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
  });
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
    pages: called('pages', (pagesOptions?: PagesOptions) => createPagesRouter(management, pagesOptions!)),
    async close() {
      open = false;
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
