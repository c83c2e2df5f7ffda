import type { RequestHandler, Response } from 'express';
import { storeCall } from '../internal/with-timeout.js';
import type { TokenStore } from '../stores/token-store.js';
import type { RevocationFeed } from '../tokens/revocation-feed.js';

/**
 * The store answered (any answer: the probe asks for an id no token has) within the deadline.
 * @example
 * const { store } = (await gate.health()).checks;
 * if (!store.ok) console.warn(`${store.kind} store: ${store.error} (${store.latencyMs} ms)`);
 */
export interface StoreHealth {
  /** True when the last probe was answered within `storeTimeoutMs`. */
  ok: boolean;
  /** `memory`, `redis`, `sqlite`, `postgres` or `custom`. */
  kind: string;
  /** How long the last probe took; null before the first. */
  latencyMs: number | null;
  /** When the last probe ended (ISO); null before the first. */
  checkedAt: string | null;
  /** Why the last probe failed. */
  error?: string;
}

/**
 * Revocations made by other instances reach this one (a store without a feed is local: always connected).
 * @example
 * const { revocationFeed } = (await gate.health()).checks;
 * if (!revocationFeed.connected) console.warn('revocation feed down: the verified-token cache is not used');
 */
export interface RevocationFeedHealth {
  /** Same as `connected`. */
  ok: boolean;
  /** True while the store's feed is listening (always true for a store without one). */
  connected: boolean;
}

/**
 * `gate.health()`: `live` while the gate is open, whatever its store does (a process that
 * answers is alive; restarting it would not bring a store back); `ready` when, in addition,
 * the store answered a probe within `storeTimeoutMs` and the revocation feed is connected.
 * @example
 * const health: GateHealth = await gate.health();
 * if (!health.ready) console.warn(JSON.stringify(health.checks));
 */
export interface GateHealth {
  /** Live, the store answered the probe, and the revocation feed is connected. */
  ready: boolean;
  /** The gate is open (not closed). */
  live: boolean;
  /** What `ready` was judged on. */
  checks: {
    /** The last store probe. */
    store: StoreHealth;
    /** The revocation feed. */
    revocationFeed: RevocationFeedHealth;
  };
}

/**
 * Express handlers for `/healthz` (liveness) and `/readyz` (readiness), from `gate.healthHandlers()`.
 * @example
 * const health: HealthHandlers = gate.healthHandlers();
 * app.get('/healthz', health.live);
 * app.get('/readyz', health.ready);
 */
export interface HealthHandlers {
  /**
   * 200 while the gate is open, else 503; answers at once with the last store probe's result
   * (never waits for the store), which the background probe keeps at most `healthProbeIntervalMs` old.
   */
  live: RequestHandler;
  /** 200 when ready, else 503; probes the store (concurrent probes share one store call). */
  ready: RequestHandler;
}

/** An id of the right shape that no token has: the probe reads it and expects "not found". */
const PROBE_ID = 'healthprobe';

export interface HealthParts {
  store: TokenStore;
  kind: string;
  feed: RevocationFeed;
  timeoutMs: number;
  isOpen: () => boolean;
  /** Background probe period once the handlers are made; 0 for none. */
  intervalMs: number;
}

/** Probes a gate's store and reads its feed, for `gate.health()` and the handlers. */
export class HealthMonitor {
  readonly #parts: HealthParts;
  #store: StoreHealth;
  #probe: Promise<StoreHealth> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(parts: HealthParts) {
    this.#parts = parts;
    this.#store = { ok: false, kind: parts.kind, latencyMs: null, checkedAt: null };
  }

  /** Probes the store now (sharing a probe already under way) and reports. */
  async check(): Promise<GateHealth> {
    if (this.#parts.isOpen()) {
      this.#probe ??= this.#probeStore().finally(() => {
        this.#probe = undefined;
      });
      this.#store = await this.#probe;
    }
    return this.snapshot();
  }

  /** The current state with the last probe's result, without asking the store. */
  snapshot(): GateHealth {
    const live = this.#parts.isOpen();
    const feed = this.#parts.feed;
    const store = live ? this.#store : { ...this.#store, ok: false, error: 'The gate is closed.' };
    const revocationFeed: RevocationFeedHealth = {
      ok: live && feed.connected,
      connected: live && feed.connected,
    };
    return { ready: live && store.ok && revocationFeed.ok, live, checks: { store, revocationFeed } };
  }

  async #probeStore(): Promise<StoreHealth> {
    const { store, kind, timeoutMs } = this.#parts;
    const started = performance.now();
    const done = (error?: string): StoreHealth => ({
      ok: error === undefined,
      kind,
      latencyMs: Math.round((performance.now() - started) * 100) / 100,
      checkedAt: new Date().toISOString(),
      ...(error === undefined ? {} : { error }),
    });
    try {
      await storeCall(() => store.get(PROBE_ID), timeoutMs);
      return done();
    } catch (err) {
      return done((err as Error).message);
    }
  }

  /**
   * Probes now and then every `intervalMs` (a probe under way is shared, never stacked), so the
   * liveness answer is true to the moment. The timer never keeps the process up; `stop()` ends it.
   */
  #startProbing(): void {
    const { intervalMs } = this.#parts;
    if (this.#timer !== undefined || intervalMs === 0 || !this.#parts.isOpen()) return;
    const probe = () => {
      void this.check();
    };
    this.#timer = setInterval(probe, intervalMs).unref();
    probe();
  }

  /** Stops the background probe (the gate's `close()`). */
  stop(): void {
    clearInterval(this.#timer);
  }

  handlers(): HealthHandlers {
    this.#startProbing();
    return {
      live: (_req, res) => send(res, this.snapshot(), 'live'),
      ready: (_req, res, next) => {
        this.check().then((health) => send(res, health, 'ready'), next);
      },
    };
  }
}

function send(res: Response, health: GateHealth, status: 'live' | 'ready'): void {
  res.status(health[status] ? 200 : 503);
  res.setHeader('Cache-Control', 'no-store');
  res.json(health);
}
