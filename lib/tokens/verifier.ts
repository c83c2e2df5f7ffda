import { hash } from 'node:crypto';
import { StoreError } from '../errors.js';
import { BoundedCache } from '../internal/bounded-cache.js';
import { FairQueue } from '../internal/fair-queue.js';
import { storeCall } from '../internal/with-timeout.js';
import type { TokenInfo, TokenRecord } from '../model.js';
import type { TokenStore } from '../stores/token-store.js';
import { parseToken } from './format.js';
import type { TokenHasher } from './hashers.js';
import { checkSeal, PUBLIC_SEAL, type SealFunction, type SealState } from './seal.js';
import { toTokenInfo } from './token-info.js';

/**
 * The verified-token cache (the gate's `cache`): a verified token is trusted this long without
 * asking the store; a revocation (on any instance sharing the store) drops it at once.
 * @example
 * const cache: CacheOptions = { maxEntries: 50_000, ttlMs: 2_000 };
 * createTokenGate({ cache });
 */
export interface CacheOptions {
  /** Most verified tokens kept. Default 10,000. 0 disables the cache. */
  maxEntries?: number;
  /** How long a verification is trusted without asking the store. Default 5,000 ms. */
  ttlMs?: number;
  /** How long a wrong secret is remembered (slow hashers only). Default 60,000 ms. */
  failureTtlMs?: number;
}

/** Why a token was refused; kept for audit events, never shown to the client. */
export type VerifyFailure = 'malformed' | 'unknown' | 'expired' | 'mismatch' | 'throttled' | 'tampered';

/** A verified token: its record, and the public view of it (shared, frozen). */
export interface Verified {
  readonly ok: true;
  readonly record: TokenRecord;
  readonly info: TokenInfo;
}

export type VerifyOutcome = Verified | { ok: false; reason: VerifyFailure; id?: string };

/** How a verification was answered: from the cache, by a store lookup, or by a lookup that ran a slow hash. */
export type VerifyPath = 'cache' | 'store' | 'hasher';

/** Receives verification timings (metrics); set with `TokenVerifier.observe`. */
export type VerifyObserver = (path: VerifyPath, seconds: number) => void;

/** Cache hits are timed one in this many: timing every hit would cost more than the hit itself. */
export const CACHE_TIMING_SAMPLE = 16;

/** How much slow-hash work a check may cause (the throttle decides). */
export interface CheckLimits {
  /** Throttle key of the client (its address); slow checks are queued fairly between clients. */
  client: string;
  /** False when the client is over its limits: only checks that need no slow hash may run. */
  slowWork: boolean;
}

export interface VerifierOptions {
  store: TokenStore;
  hasher: TokenHasher;
  tokenPrefix: string;
  cache?: CacheOptions;
  /** Deadline for every store call; past it the request fails closed with 503. Default 2,000 ms. */
  storeTimeoutMs?: number;
  /** Least time between two last-used writes of one token. Default 60,000 ms. */
  touchIntervalMs?: number;
  /** Concurrent slow checks (bcrypt). Default 4; 256 more may wait. */
  maxConcurrentSlowChecks?: number;
  /** Told when the right secret meets a record whose seal is missing or broken (a store write). */
  onTampered?: (record: TokenRecord, state: Exclude<SealState, 'intact'>) => void;
  /** Clock, for tests. */
  now?: () => number;
}

const MAX_TOKEN_LENGTH = 256;
const UNLIMITED: CheckLimits = { client: 'library', slowWork: true };

/** The cache key of a token string: a SHA-256, so the cache never holds a raw token. */
export function cacheKeyOf(token: string): string {
  return hash('sha256', token, 'base64');
}

/**
 * The verification engine behind `TokenService.verify` and the request path (internal).
 * Caches verified records briefly; concurrent checks of one token share one lookup; a
 * revocation or change seen while a lookup is in flight makes that lookup read again, so a
 * revoked token is never passed or cached by a lookup that started before the revocation.
 */
export class TokenVerifier {
  readonly #store: TokenStore;
  readonly #hasher: TokenHasher;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #touchIntervalMs: number;
  readonly #now: () => number;
  readonly #seal: SealFunction;
  readonly #onTampered: NonNullable<VerifierOptions['onTampered']>;
  /** Verified outcomes by cache key, handed out as they are: a hit allocates nothing. */
  readonly #cache: BoundedCache<string, Verified>;
  readonly #keyById: BoundedCache<string, string>;
  readonly #wrongSecrets: BoundedCache<string, true>;
  /**
   * Stored hashes a slow hasher already matched, by cache key: a token checked before skips
   * bcrypt while its record keeps that hash. Not part of the verified cache (each check still
   * reads the record, so revocation is seen), so it stays on when that cache is switched off.
   */
  readonly #verifiedHashes = new BoundedCache<string, string>(10_000);
  readonly #lastTouch = new BoundedCache<string, number>(100_000);
  readonly #inFlight = new Map<string, Promise<VerifyOutcome>>();
  readonly #slow: FairQueue | undefined;
  readonly #slowById = new Map<string, Promise<unknown>>();
  /** Revocation bookkeeping: every forget() advances the epoch. */
  #epoch = 0;
  #everythingChangedAt = -1;
  readonly #changedAt = new BoundedCache<string, number>(100_000, 300_000);
  #trusted = true;
  /** Counters for metrics: cache hits and misses, and keys the request path's throttle blocked. */
  readonly stats = { hits: 0, misses: 0, throttleBlocks: { address: 0, token: 0 } };
  #observer: VerifyObserver | undefined;
  #untilTimed = CACHE_TIMING_SAMPLE;

  constructor(options: VerifierOptions) {
    this.#store = options.store;
    this.#hasher = options.hasher;
    this.#prefix = options.tokenPrefix;
    this.#timeoutMs = options.storeTimeoutMs ?? 2_000;
    this.#touchIntervalMs = options.touchIntervalMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    this.#seal = sealFunctionOf(options.hasher);
    this.#onTampered = options.onTampered ?? (() => {});
    const cache = options.cache ?? {};
    const maxEntries = cache.maxEntries ?? 10_000;
    this.#cache = new BoundedCache(maxEntries, cache.ttlMs ?? 5_000);
    this.#keyById = new BoundedCache(maxEntries);
    this.#wrongSecrets = new BoundedCache(maxEntries, cache.failureTtlMs ?? 60_000);
    this.#slow = this.#hasher.slow ? new FairQueue(options.maxConcurrentSlowChecks ?? 4, 256) : undefined;
  }

  /** The store records are read from. */
  get store(): TokenStore {
    return this.#store;
  }

  /** Whether cached verifications may be used (false while the revocation feed is down). */
  get trusted(): boolean {
    return this.#trusted;
  }

  set trusted(value: boolean) {
    if (!value) this.forget('*');
    this.#trusted = value;
  }

  get cacheSize(): number {
    return this.#cache.size;
  }

  /**
   * Reports how long verifications take: every lookup, and one cache hit in
   * `CACHE_TIMING_SAMPLE` (the rest are only counted in `stats`).
   */
  observe(observer: VerifyObserver): void {
    this.#observer = observer;
  }

  /** The outcome from the cache alone; undefined when only the store can tell. The hot path. */
  checkCached(token: string): VerifyOutcome | undefined {
    if (!this.#trusted) return undefined;
    if (this.#observer !== undefined && --this.#untilTimed === 0) return this.#timedCachedOutcome(token);
    return this.#cachedOutcome(cacheKeyOf(token));
  }

  #timedCachedOutcome(token: string): VerifyOutcome | undefined {
    this.#untilTimed = CACHE_TIMING_SAMPLE;
    const started = performance.now();
    const outcome = this.#cachedOutcome(cacheKeyOf(token));
    if (outcome !== undefined) this.#observer?.('cache', (performance.now() - started) / 1000);
    return outcome;
  }

  #cachedOutcome(key: string): VerifyOutcome | undefined {
    const now = this.#now();
    const verified = this.#cache.get(key, now);
    if (verified === undefined) return undefined;
    this.stats.hits++;
    const { expiresAt, id } = verified.record;
    return expiresAt !== null && expiresAt <= now ? { ok: false, reason: 'expired', id } : verified;
  }

  /**
   * Verifies a token; concurrent checks of one token share a single lookup (and a single
   * slow hash). Rejects with a StoreError when the store fails.
   */
  check(token: string, limits: CheckLimits = UNLIMITED): Promise<VerifyOutcome> {
    // Nothing that is not a plausible token string is hashed or looked up.
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH)
      return Promise.resolve({ ok: false, reason: 'malformed' });
    const key = cacheKeyOf(token);
    const cached = this.#trusted ? this.#cachedOutcome(key) : undefined;
    if (cached !== undefined) return Promise.resolve(cached);
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) return pending;
    this.stats.misses++;
    const lookup = this.#timedLookup(token, key, limits).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, lookup);
    return lookup;
  }

  async #timedLookup(token: string, key: string, limits: CheckLimits): Promise<VerifyOutcome> {
    const observer = this.#observer;
    if (observer === undefined) return this.#lookup(token, key, limits, undefined);
    const started = performance.now();
    const work = { slowHash: false };
    try {
      return await this.#lookup(token, key, limits, work);
    } finally {
      observer(work.slowHash ? 'hasher' : 'store', (performance.now() - started) / 1000);
    }
  }

  async #lookup(
    token: string,
    key: string,
    limits: CheckLimits,
    work: { slowHash: boolean } | undefined,
  ): Promise<VerifyOutcome> {
    const parsed = parseToken(token, this.#prefix);
    if (parsed === null) return { ok: false, reason: 'malformed' };
    const { id, secret } = parsed;
    if (this.#slow !== undefined && this.#wrongSecrets.has(key)) return { ok: false, reason: 'mismatch', id };
    // Read, judge, and read again if the token was revoked or changed meanwhile.
    for (let attempt = 0; attempt < 2; attempt++) {
      const started = this.#epoch;
      const record = await storeCall(() => this.#store.get(id), this.#timeoutMs);
      if (record === null || record.id !== id) return { ok: false, reason: 'unknown', id };
      const matches = await this.#matches(id, id + secret, record, key, limits, work);
      if (this.#changedSince(id, started)) continue;
      if (matches === 'throttled') return { ok: false, reason: 'throttled', id };
      if (!matches) {
        if (this.#slow !== undefined) this.#wrongSecrets.set(key, true);
        return { ok: false, reason: 'mismatch', id };
      }
      // The right secret, but is this the record the library wrote? A store write that changed
      // the owner, scope, expiry, restrictions or hash breaks the seal: the same 401 as a wrong secret.
      const seal = checkSeal(record, this.#seal);
      if (seal !== 'intact') {
        this.#onTampered(record, seal);
        return { ok: false, reason: 'tampered', id };
      }
      const now = this.#now();
      if (record.expiresAt !== null && record.expiresAt <= now) return { ok: false, reason: 'expired', id };
      if (this.#slow !== undefined) this.#verifiedHashes.set(key, record.hash);
      const verified: Verified = Object.freeze({ ok: true, record, info: toTokenInfo(record) });
      if (this.#trusted) {
        this.#cache.set(key, verified, undefined, now);
        this.#keyById.set(id, key);
      }
      return verified;
    }
    // Revoked or changed twice while we looked: fail closed rather than guess.
    throw new StoreError('The token changed while it was being checked. Try again.');
  }

  /** Does the secret match the stored hash? Slow hashes run at most once per token and record. */
  async #matches(
    id: string,
    material: string,
    record: TokenRecord,
    key: string,
    limits: CheckLimits,
    work: { slowHash: boolean } | undefined,
  ): Promise<boolean | 'throttled'> {
    const slow = this.#slow;
    if (slow === undefined) return this.#hasher.verify(material, record.hash);
    if (this.#verifiedHashes.get(key) === record.hash) return true;
    // Past the quick check only the real secret and one forgery in 65,536 remain: those may run
    // even for a client or an id over its limits. Without a check, over the limits means no slow work.
    const passed = this.#hasher.quickCheck?.(material, record.hash);
    if (passed === false) return false;
    if (passed === undefined && !limits.slowWork) return 'throttled';
    if (work !== undefined) work.slowHash = true;
    // One slow check per id at a time: forged attempts against one id queue behind each other.
    const before = this.#slowById.get(id) ?? Promise.resolve();
    const run = before.then(
      () => slow.run(limits.client, () => this.#hasher.verify(material, record.hash)),
      () => slow.run(limits.client, () => this.#hasher.verify(material, record.hash)),
    );
    this.#slowById.set(id, run);
    try {
      return await run;
    } finally {
      if (this.#slowById.get(id) === run) this.#slowById.delete(id);
    }
  }

  #changedSince(id: string, started: number): boolean {
    return this.#everythingChangedAt > started || (this.#changedAt.get(id) ?? -1) > started;
  }

  /**
   * A token was revoked or changed (`'*'`: anything may have been). Drops it from the cache, and
   * makes every lookup that started before now read again.
   */
  forget(id: string): void {
    this.#epoch++;
    if (id === '*') {
      this.#everythingChangedAt = this.#epoch;
      this.#cache.clear();
      return;
    }
    this.#changedAt.set(id, this.#epoch);
    const key = this.#keyById.get(id);
    if (key !== undefined && this.#cache.get(key)?.record.id === id) this.#cache.delete(key);
    this.#lastTouch.delete(id);
  }

  /**
   * Records a use: the first at once, later ones at most once per `touchIntervalMs`.
   * Fire and forget: a failed write never fails the request it describes.
   */
  noteUse(record: TokenRecord, ip: string | null): void {
    const now = this.#now();
    const last = this.#lastTouch.get(record.id) ?? record.lastUsedAt;
    if (last !== null && now - last < this.#touchIntervalMs) return;
    this.#lastTouch.set(record.id, now);
    storeCall(() => this.#store.touch(record.id, now, ip), this.#timeoutMs).catch(() => {
      this.#lastTouch.delete(record.id);
    });
  }

  /** Releases the slow hasher's threads. */
  async close(): Promise<void> {
    await this.#hasher.close?.();
  }
}

/** The hasher's seal (keyed from its pepper), or the public one when it has no secret. */
export function sealFunctionOf(hasher: TokenHasher): SealFunction {
  return typeof hasher.seal === 'function' ? (data) => hasher.seal!(data) : PUBLIC_SEAL;
}
