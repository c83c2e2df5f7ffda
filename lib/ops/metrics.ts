import type { RequestHandler } from 'express';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { statusOf, type TokenGateErrorCode } from '../errors.js';
import { requireOptional } from '../internal/optional-module.js';
import { either, fail, object, type Shape, withMethods } from '../internal/options.js';
import type { LoginThrottle } from '../throttle/login-throttle.js';
import type { RevocationFeed } from '../tokens/revocation-feed.js';
import type { TokenVerifier, VerifyObserver } from '../tokens/verifier.js';
import type { StoreObserver } from './instrumented-store.js';
import { Tallies } from './tallies.js';

/**
 * The part of a prom-client `Registry` the gate uses; any prom-client 15 registry fits. Typed
 * structurally so that the package's types do not need prom-client installed.
 * @example
 * import { Registry } from 'prom-client';
 * const registry: MetricsRegistryLike = new Registry();
 * createTokenGate({ metrics: { registry } });
 */
export interface MetricsRegistryLike {
  /** Adds a metric (the gate's own, at startup). */
  registerMetric(metric: never): void;
  /** Removes a metric by name (the gate's own, at `close()`). */
  removeSingleMetric(name: string): void;
  /** Every metric in Prometheus text format. */
  metrics(): Promise<string>;
  /** The `Content-Type` of that text. */
  readonly contentType: string;
}

/**
 * Prometheus metrics of a gate (the `metrics` option, beside `true`).
 * @example
 * import { collectDefaultMetrics, Registry } from 'prom-client';
 * const registry = new Registry();
 * collectDefaultMetrics({ register: registry });
 * const gate = createTokenGate({ metrics: { registry } satisfies MetricsOptions });
 * app.get('/metrics', gate.metricsHandler()); // the gate's metrics and the defaults
 */
export interface MetricsOptions {
  /**
   * The prom-client `Registry` to register the gate's metrics in (for example the one your app
   * already serves, with `collectDefaultMetrics`). Default: a new registry of the gate's own.
   */
  registry?: MetricsRegistryLike;
}

export const METRICS_OPTIONS: Shape<MetricsOptions> = {
  registry: withMethods(['registerMetric', 'removeSingleMetric', 'metrics'], 'a prom-client Registry'),
};

/** `metrics: true`, `false`, or `{ registry }`. */
export const metricsOption = either((value, path) => {
  if (typeof value !== 'boolean') fail(path, 'must be true, false or { registry }');
}, object(METRICS_OPTIONS));

/** Everything a metric name starts with. */
export const METRIC_PREFIX = 'express_api_tokens_';

const VERIFY_BUCKETS = [1e-5, 5e-5, 1e-4, 5e-4, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const STORE_BUCKETS = [5e-4, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the metrics read when Prometheus scrapes (set once the gate has built them). */
export interface MetricSources {
  verifier: TokenVerifier;
  feed: RevocationFeed;
  loginThrottle: LoginThrottle;
  /** The notification sinks' delivery counts, with `notify`. */
  notifications?: { readonly stats: { delivered: number; failed: number; dropped: number } } | undefined;
}

type PromClient = typeof import('prom-client');

/** The outcome label of a refusal code: 5xx are a backend's failure, 4xx the request's. */
function outcomeOf(code: string): string {
  if (code === 'STORE_UNAVAILABLE') return 'store_unavailable';
  return statusOf(code as TokenGateErrorCode) >= 500 ? 'unavailable' : 'refused';
}

/**
 * A gate's Prometheus metrics. Hot-path figures are plain counters (`Tallies`, the verifier's
 * `stats`) copied into prom-client when Prometheus scrapes; only lookups, store calls, feed
 * messages and one cache hit in sixteen are observed as they happen.
 */
export class GateMetrics {
  readonly tallies = new Tallies();
  readonly registry: MetricsRegistryLike;
  readonly storeObserver: StoreObserver;
  readonly verifyObserver: VerifyObserver;
  readonly #names: string[] = [];
  #sources: MetricSources | undefined;

  constructor(option: true | MetricsOptions, storeKind: string) {
    const client = requireOptional<PromClient>('prom-client', 'The `metrics` option');
    const registry: MetricsRegistryLike =
      option === true || option.registry === undefined ? new client.Registry() : option.registry;
    this.registry = registry;
    const tallies = this.tallies;
    const register = <M extends object>(metric: M): M => {
      const name = (metric as unknown as { name: string }).name;
      try {
        registry.registerMetric(metric as never);
      } catch (err) {
        for (const registered of this.#names) registry.removeSingleMetric(registered);
        throw new TypeError(
          `\`metrics.registry\` already holds ${name}: give each gate a registry of its own`,
          { cause: err },
        );
      }
      this.#names.push(name);
      return metric;
    };
    const counter = (name: string, help: string, labelNames: string[], collect?: (c: Counter) => void) => {
      const metric: Counter = new client.Counter({
        name: METRIC_PREFIX + name,
        help,
        labelNames,
        registers: [],
        ...(collect ? { collect: () => collect(metric) } : {}),
      });
      return register(metric);
    };
    const gauge = (name: string, help: string, collect: (g: Gauge) => void) => {
      const metric: Gauge = new client.Gauge({
        name: METRIC_PREFIX + name,
        help,
        registers: [],
        collect: () => collect(metric),
      });
      return register(metric);
    };
    const histogram = (name: string, help: string, labelNames: string[], buckets: number[]) =>
      register(
        new client.Histogram({ name: METRIC_PREFIX + name, help, labelNames, buckets, registers: [] }),
      ) as Histogram;
    /** A counter whose value is a plain number the gate keeps. */
    const fromNumbers = (c: Counter, values: Array<[Record<string, string>, number]>) => {
      c.reset();
      for (const [labels, value] of values) c.inc(labels, value);
    };
    const sources = () => this.#sources;

    counter(
      'decisions_total',
      'Requests judged by protect(): outcome passed (reason: token, password or anonymous), refused, store_unavailable or unavailable (reason: the error code).',
      ['outcome', 'reason'],
      (c) =>
        fromNumbers(c, [
          ...Object.entries(tallies.passed).map(([reason, n]): [Record<string, string>, number] => [
            { outcome: 'passed', reason },
            n,
          ]),
          ...[...tallies.refused].map(([code, n]): [Record<string, string>, number] => [
            { outcome: outcomeOf(code), reason: code },
            n,
          ]),
        ]),
    );
    const verify = histogram(
      'verify_duration_seconds',
      'Token verification time by path: cache (one hit in 16 is timed), store (a lookup), hasher (a lookup that ran a slow hash, queue included).',
      ['path'],
      VERIFY_BUCKETS,
    );
    const verifyByPath = {
      cache: verify.labels('cache'),
      store: verify.labels('store'),
      hasher: verify.labels('hasher'),
    };
    this.verifyObserver = (path, seconds) => verifyByPath[path].observe(seconds);
    counter('verified_cache_hits_total', 'Verifications answered from the verified-token cache.', [], (c) =>
      fromNumbers(c, [[{}, sources()?.verifier.stats.hits ?? 0]]),
    );
    counter(
      'verified_cache_misses_total',
      'Verifications that asked the store (the cache hit ratio is hits / (hits + misses)).',
      [],
      (c) => fromNumbers(c, [[{}, sources()?.verifier.stats.misses ?? 0]]),
    );
    gauge('verified_cache_entries', 'Tokens in the verified-token cache.', (g) =>
      g.set(sources()?.verifier.cacheSize ?? 0),
    );

    const storeCalls = histogram(
      'store_call_duration_seconds',
      'Token store calls by operation, failed ones included.',
      ['store', 'operation'],
      STORE_BUCKETS,
    );
    const storeErrors = counter(
      'store_errors_total',
      'Token store calls that failed (reason error) or settled after the deadline (reason timeout).',
      ['store', 'operation', 'reason'],
    );
    let feedConnected = true;
    const feedDisconnects = counter(
      'revocation_feed_disconnects_total',
      'Times the store reported its revocation feed down.',
      [],
    );
    const received = counter(
      'revocations_received_total',
      "Revocation and change messages received over the store's feed: scope token, or all (anything may have changed, e.g. after a reconnect).",
      ['scope'],
    );
    const lag = histogram(
      'revocation_feed_lag_seconds',
      "Round trip of this instance's own revocations and changes through the store's feed, from the start of the store call to delivery.",
      [],
      LAG_BUCKETS,
    );
    const storeCallsOf = new Map<string, ReturnType<Histogram['labels']>>();
    const errorsOf = new Map<string, ReturnType<Counter['labels']>>();
    this.storeObserver = {
      call(operation, seconds, result) {
        let timer = storeCallsOf.get(operation);
        if (timer === undefined) {
          timer = storeCalls.labels(storeKind, operation);
          storeCallsOf.set(operation, timer);
        }
        timer.observe(seconds);
        if (result === 'ok') return;
        const key = `${operation} ${result}`;
        let errors = errorsOf.get(key);
        if (errors === undefined) {
          errors = storeErrors.labels(storeKind, operation, result);
          errorsOf.set(key, errors);
        }
        errors.inc();
      },
      feedMessage: (scope) => received.inc({ scope }),
      feedLag: (seconds) => lag.observe(seconds),
      feedState(connected) {
        if (!connected && feedConnected) feedDisconnects.inc();
        feedConnected = connected;
      },
    };
    gauge(
      'revocation_feed_up',
      '1 while revocations made by other instances reach this one (a store without a feed is local: 1), else 0; the verified-token cache is not used while 0.',
      (g) => g.set(sources()?.feed.connected === false ? 0 : 1),
    );

    counter(
      'throttle_blocks_total',
      'Keys that went over a throttle limit: address or token (failed token attempts), login_address or login_user (failed management logins).',
      ['limit'],
      (c) => {
        const s = sources();
        fromNumbers(c, [
          [{ limit: 'address' }, s?.verifier.stats.throttleBlocks.address ?? 0],
          [{ limit: 'token' }, s?.verifier.stats.throttleBlocks.token ?? 0],
          [{ limit: 'login_address' }, s?.loginThrottle.blocks.address ?? 0],
          [{ limit: 'login_user' }, s?.loginThrottle.blocks.user ?? 0],
        ]);
      },
    );
    counter(
      'token_events_total',
      'Token changes and reminders by event type (token.created, token.updated, token.revoked, token.rotated, token.expiring, token.expired; upstream.deleted, upstream.delete-failed in access-token mode).',
      ['type'],
      (c) =>
        fromNumbers(
          c,
          [...tallies.tokenEvents].map(([type, n]) => [{ type }, n]),
        ),
    );
    counter(
      'management_refusals_total',
      'Requests the management API refused, by error code.',
      ['code'],
      (c) =>
        fromNumbers(
          c,
          [...tallies.managementRefused].map(([code, n]) => [{ code }, n]),
        ),
    );
    counter(
      'notifications_total',
      'Notification deliveries (e-mails, webhook calls) by outcome: delivered, failed (given up after retries) or dropped (queue full).',
      ['outcome'],
      (c) => {
        const stats = sources()?.notifications?.stats;
        fromNumbers(c, [
          [{ outcome: 'delivered' }, stats?.delivered ?? 0],
          [{ outcome: 'failed' }, stats?.failed ?? 0],
          [{ outcome: 'dropped' }, stats?.dropped ?? 0],
        ]);
      },
    );
    counter(
      'rate_limited_total',
      'Requests refused by a rate limit (429 RATE_LIMITED), by limit: token or user.',
      ['limit'],
      (c) =>
        fromNumbers(c, [
          [{ limit: 'token' }, tallies.rateLimited.token],
          [{ limit: 'user' }, tallies.rateLimited.user],
        ]),
    );
    counter(
      'rate_limit_store_failures_total',
      'Rate-limit reservations the store failed or timed out; the instance then counts on its own for 5 seconds.',
      [],
      (c) => fromNumbers(c, [[{}, tallies.rateLimitStoreFailures]]),
    );
    counter(
      'upstream_errors_total',
      'Refusals because Bitbucket (or a group resolver, or a stored Bitbucket credential) failed, by error code.',
      ['code'],
      (c) => {
        const counts = new Map<string, number>();
        for (const map of [tallies.refused, tallies.managementRefused])
          for (const [code, n] of map)
            if (code.startsWith('UPSTREAM_')) counts.set(code, (counts.get(code) ?? 0) + n);
        fromNumbers(
          c,
          [...counts].map(([code, n]) => [{ code }, n]),
        );
      },
    );
  }

  /** Tells the metrics where the scrape-time figures live. */
  watch(sources: MetricSources): void {
    this.#sources = sources;
  }

  /** Express handler for `/metrics` (Prometheus text format, never cached). */
  handler(): RequestHandler {
    const registry = this.registry;
    return function metricsHandler(_req, res, next) {
      registry.metrics().then((text) => {
        res.setHeader('Content-Type', registry.contentType);
        res.setHeader('Cache-Control', 'no-store');
        res.send(text);
      }, next);
    };
  }

  /** Takes the gate's metrics out of the registry (a registry you passed outlives the gate). */
  close(): void {
    for (const name of this.#names) this.registry.removeSingleMetric(name);
    this.#names.length = 0;
  }
}
