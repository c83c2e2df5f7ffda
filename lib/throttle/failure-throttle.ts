import { TooManyAttemptsError } from '../errors.js';
import { BoundedCache } from '../internal/bounded-cache.js';
import { integer, type Shape } from '../internal/options.js';
import type { TokenStore } from '../stores/token-store.js';
import { addressKey } from './address-key.js';
import { FAILURE_WINDOW_OPTIONS, FailureCounter, THROTTLE_DEFAULTS } from './failure-window.js';

/**
 * Brute-force throttling of failed token attempts (the gate's `throttle`). An address over its
 * limit is slowed (one attempt at a time, failures answered 429), never shut out: a valid token
 * still passes. A token id over its limit is never blocked.
 * @example
 * const throttle: ThrottleOptions = { maxFailuresPerIp: 60, windowMs: 600_000 };
 * createTokenGate({ throttle });
 */
export interface ThrottleOptions {
  /** Failed attempts one client address (an IPv6 /64) may make per window before it is slowed. Default 30. */
  maxFailuresPerIp?: number;
  /** Failed attempts against one token id per window before its slow-hash work is bounded. Default 50. */
  maxFailuresPerToken?: number;
  /** Window length. Default 900,000 ms (15 minutes). */
  windowMs?: number;
  /** Attempts from a slowed address that may wait for their turn; more get 429 at once. Default 64. */
  maxQueuedPerIp?: number;
}

export const THROTTLE_OPTIONS: Shape<ThrottleOptions> = {
  ...FAILURE_WINDOW_OPTIONS,
  maxFailuresPerToken: integer(),
  maxQueuedPerIp: integer(1, 10_000),
};

const MAX_KEYS = 100_000;

/** How many keys went over their limit (read by metrics). */
export interface ThrottleBlockCounts {
  address: number;
  token: number;
}

/** One admitted verification: what it may do, and how to report its end. */
export interface Ticket {
  /** The client's throttle key (slow checks are queued fairly by it). */
  readonly client: string;
  /** Over a limit: may not cause new slow-hash work; a failure is answered 429. */
  readonly over: boolean;
  /** Seconds until the client's window ends (for `Retry-After`). */
  readonly retryAfter: number;
  /** Ends the attempt; a failure is counted (in the store when it counts, so a fleet shares it). */
  done(failed: boolean): void;
}

/**
 * Throttling that slows guessing without punishing neighbours. The rules:
 * - A token in the verified cache never meets the throttle: a valid token is never refused
 *   because of other clients' failures.
 * - Attempts are reserved before they run: an address's failures plus its attempts in flight
 *   are held to `maxFailuresPerIp`. Past it the address is *slowed*, not shut out: its attempts
 *   are still verified (a valid token still passes), one at a time, with at most
 *   `maxQueuedPerIp` waiting; its failures are answered 429; it may cause no slow-hash work.
 * - A token id's failures never block the id (ids are public, so anyone could lock its owner
 *   out); past `maxFailuresPerToken` they only stop new slow-hash work for that id, which the
 *   hasher's quick check and the record of earlier successes make unnecessary for its owner.
 * - Counts live in the store (shared by a fleet) and are mirrored here. Keys over their limit
 *   move to a separate bounded cache that only keys with a full window of failures can enter,
 *   so a flood of fresh keys (cheap for anyone with an IPv6 prefix) cannot evict a block.
 */
export class FailureThrottle {
  readonly #perIp: number;
  readonly #perToken: number;
  readonly #windowMs: number;
  readonly #maxQueued: number;
  readonly #counter: FailureCounter;
  /** Last known failure count per key, until its window ends. */
  readonly #failures: BoundedCache<string, number>;
  /** Keys over their limit, until their window ends. */
  readonly #over: BoundedCache<string, true>;
  readonly #inFlight = new Map<string, number>();
  /** Slowed addresses: the tail of each one's line of waiting attempts. */
  readonly #lines = new Map<string, { tail: Promise<void>; waiting: number }>();
  readonly #blocks: ThrottleBlockCounts;

  constructor(
    store: Pick<TokenStore, 'countFailure'>,
    options: Readonly<ThrottleOptions> = {},
    blocks: ThrottleBlockCounts = { address: 0, token: 0 },
  ) {
    this.#blocks = blocks;
    this.#perIp = options.maxFailuresPerIp ?? THROTTLE_DEFAULTS.maxFailuresPerIp;
    this.#perToken = options.maxFailuresPerToken ?? THROTTLE_DEFAULTS.maxFailuresPerToken;
    this.#windowMs = options.windowMs ?? THROTTLE_DEFAULTS.windowMs;
    this.#maxQueued = options.maxQueuedPerIp ?? THROTTLE_DEFAULTS.maxQueuedPerIp;
    this.#counter = new FailureCounter(store, this.#windowMs, MAX_KEYS);
    this.#failures = new BoundedCache(MAX_KEYS, this.#windowMs);
    this.#over = new BoundedCache(MAX_KEYS, this.#windowMs);
  }

  /**
   * Admits one cache-miss verification. Synchronous for a client within its limits; a slowed
   * client waits its turn (or gets 429 when its line is full).
   */
  admit(clientIp: string | null, tokenId: string | undefined): Ticket | Promise<Ticket> {
    const client = addressKey(clientIp);
    const idKey = tokenId === undefined ? undefined : `id:${tokenId}`;
    const now = Date.now();
    const addressOver = this.#isOver(client, this.#perIp);
    const idOver = idKey !== undefined && this.#isOver(idKey, this.#perToken);
    if (!addressOver) return this.#ticket(client, idKey, idOver, now);
    // Slowed: one attempt at a time from this address, in arrival order.
    const line = this.#lines.get(client) ?? { tail: Promise.resolve(), waiting: 0 };
    if (line.waiting >= this.#maxQueued) throw new TooManyAttemptsError(this.#retryAfter(client, now));
    line.waiting++;
    this.#lines.set(client, line);
    let release!: () => void;
    const turn = line.tail.then(() => {
      line.waiting--;
      return this.#ticket(client, idKey, true, now, () => {
        release();
        if (line.waiting === 0 && this.#lines.get(client) === line) this.#lines.delete(client);
      });
    });
    line.tail = turn.then(() => new Promise<void>((resolve) => (release = resolve)));
    return turn;
  }

  #ticket(client: string, idKey: string | undefined, over: boolean, now: number, onEnd?: () => void): Ticket {
    this.#adjust(client, 1);
    if (idKey !== undefined) this.#adjust(idKey, 1);
    let ended = false;
    return {
      client,
      over,
      retryAfter: this.#retryAfter(client, now),
      done: (failed) => {
        if (ended) return;
        ended = true;
        this.#adjust(client, -1);
        if (idKey !== undefined) this.#adjust(idKey, -1);
        onEnd?.();
        if (failed) {
          void this.#count(client, this.#perIp);
          if (idKey !== undefined) void this.#count(idKey, this.#perToken);
        }
      },
    };
  }

  /** Over the limit: known failures plus attempts in flight reach it. */
  #isOver(key: string, limit: number): boolean {
    return this.#over.has(key) || (this.#failures.get(key) ?? 0) + (this.#inFlight.get(key) ?? 0) >= limit;
  }

  #adjust(key: string, delta: number): void {
    const next = (this.#inFlight.get(key) ?? 0) + delta;
    if (next <= 0) this.#inFlight.delete(key);
    else this.#inFlight.set(key, next);
  }

  #retryAfter(client: string, now: number): number {
    const until = this.#over.expiresAt(client, now) ?? this.#failures.expiresAt(client, now);
    return until === undefined ? 1 : Math.max(1, Math.ceil((until - now) / 1000));
  }

  async #count(key: string, limit: number): Promise<void> {
    try {
      const count = await this.#counter.add(key);
      // The window restarts when the store says the count restarted.
      const now = Date.now();
      const until = count <= 1 ? undefined : this.#failures.expiresAt(key, now);
      const remaining = until === undefined ? this.#windowMs : until - now;
      this.#failures.set(key, count, remaining, now);
      if (count >= limit && !this.#over.has(key, now)) {
        this.#over.set(key, true, remaining, now);
        if (key.startsWith('id:')) this.#blocks.token++;
        else this.#blocks.address++;
      }
    } catch {
      // Counting is best effort when the store is down: the lookup itself fails closed.
    }
  }
}
