import { TooManyAttemptsError } from '../errors.js';
import { FixedWindowCounter } from '../internal/fixed-window-counter.js';
import { addressKey } from '../internal/ip.js';
import type { TokenStore } from '../stores/token-store.js';
import { VerifiedTokenCache } from '../tokens/cache.js';
import { parseToken } from '../tokens/format.js';

/** Brute-force throttling of failed token attempts. */
export interface ThrottleOptions {
  /** Failed attempts one client address (an IPv6 /64) may make per window. Default 30. */
  maxFailuresPerIp?: number;
  /** Failed attempts against one token id per window. Default 50. */
  maxFailuresPerToken?: number;
  /** Window length. Default 900,000 ms (15 minutes). */
  windowMs?: number;
}

const BOUND = 100_000;

function positive(value: number | undefined, fallback: number, name: string): number {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || chosen < 1)
    throw new TypeError(`\`throttle.${name}\` must be a positive integer`);
  return chosen;
}

/**
 * Counts failures per client address and per token id in the store (so a fleet shares them;
 * in process when the store has no counters), and refuses with 429 before any store lookup or
 * hashing once a key is over its limit. Blocks are mirrored in process, so a request that is
 * not blocked costs no store access here.
 */
export class FailureThrottle {
  private readonly perIp: number;
  private readonly perToken: number;
  private readonly windowMs: number;
  private readonly blockedUntil = new Map<string, number>();
  private readonly localCounts = new FixedWindowCounter(BOUND);
  /** Tokens this instance verified lately, by id: their owner keeps working while the id is under attack. */
  private readonly knownGood = new Map<string, string>();

  constructor(
    private readonly store: TokenStore,
    private readonly prefix: string,
    options: Readonly<ThrottleOptions> = {},
  ) {
    this.perIp = positive(options.maxFailuresPerIp, 30, 'maxFailuresPerIp');
    this.perToken = positive(options.maxFailuresPerToken, 50, 'maxFailuresPerToken');
    this.windowMs = positive(options.windowMs, 900_000, 'windowMs');
  }

  /** Throws TooManyAttemptsError when the address, or the token id, is blocked. */
  assertAllowed(clientIp: string | null, token: string): void {
    if (this.blockedUntil.size === 0) return; // the usual case costs nothing
    const now = Date.now();
    this.check(addressKey(clientIp), now);
    const id = parseToken(token, this.prefix)?.id;
    if (id !== undefined && this.knownGood.get(id) !== VerifiedTokenCache.keyOf(token))
      this.check(`id:${id}`, now);
  }

  /** Counts a failed attempt; never fails the (already refused) request itself. */
  async recordFailure(clientIp: string | null, tokenId: string | undefined): Promise<void> {
    const counts: Array<[string, number]> = [[addressKey(clientIp), this.perIp]];
    if (tokenId !== undefined) counts.push([`id:${tokenId}`, this.perToken]);
    await Promise.all(
      counts.map(async ([key, limit]) => {
        try {
          if ((await this.count(key)) >= limit) this.block(key);
        } catch {
          // Counting is best effort when the store is down: the lookup itself fails closed.
        }
      }),
    );
  }

  /** Remembers a verified token so that attacks on its id never lock its owner out. */
  noteSuccess(id: string, token: string): void {
    if (this.knownGood.has(id)) return; // an id has exactly one valid token string
    if (this.knownGood.size >= BOUND) this.knownGood.clear();
    this.knownGood.set(id, VerifiedTokenCache.keyOf(token));
  }

  private check(key: string, now: number): void {
    const until = this.blockedUntil.get(key);
    if (until === undefined) return;
    if (until <= now) this.blockedUntil.delete(key);
    else throw new TooManyAttemptsError(Math.ceil((until - now) / 1000));
  }

  private block(key: string): void {
    if (this.blockedUntil.size >= BOUND) this.blockedUntil.clear();
    this.blockedUntil.set(key, Date.now() + this.windowMs);
  }

  private async count(key: string): Promise<number> {
    return this.store.countFailure
      ? this.store.countFailure(key, this.windowMs)
      : this.localCounts.add(key, this.windowMs);
  }
}
