import { ValidationError } from '../errors.js';
import { Semaphore } from '../internal/semaphore.js';
import {
  daysToMs,
  isDayCount,
  parseInstant,
  validateName,
  validateScope,
  validateUser,
} from '../internal/validate.js';
import { storeCall } from '../internal/with-timeout.js';
import type { Scope, TokenInfo } from '../model.js';
import type { TokenQuery, TokenRecord, TokenStore } from '../stores/token-store.js';
import { type CacheOptions, VerifiedTokenCache } from './cache.js';
import { generateToken, isTokenId, parseToken } from './format.js';
import type { TokenHasher } from './hashers.js';

/** When tokens expire. */
export interface ExpiryPolicy {
  /** Days until expiry when a token is created without one. Default: `maxDays`, else never. */
  defaultDays?: number;
  /** Longest lifetime allowed; a longer request is refused, never clamped. Default: unlimited. */
  maxDays?: number;
}

export interface TokenServiceOptions {
  store: TokenStore;
  hasher: TokenHasher;
  tokenPrefix: string;
  expiry?: ExpiryPolicy;
  cache?: CacheOptions;
  /** Deadline for every store call; past it the request fails closed with 503. Default 2,000 ms. */
  storeTimeoutMs?: number;
  /** Least time between two last-used writes of one token. Default 60,000 ms. */
  touchIntervalMs?: number;
  /** Concurrent checks for slow hashers (bcrypt). Default 4; 256 more may wait. */
  maxConcurrentSlowChecks?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface CreateTokenInput {
  user: string;
  name: string;
  scope: Scope;
  /** A `Date` or an ISO 8601 string; default from the expiry policy. */
  expiresAt?: Date | string | null;
  /** Who creates it, when not the owner (an administrator). Default: `user`. */
  createdBy?: string;
}

/** Why a token was refused; kept for audit events, never shown to the client. */
export type VerifyFailure = 'malformed' | 'unknown' | 'expired' | 'mismatch';

export type VerifyOutcome =
  | { ok: true; record: TokenRecord }
  | { ok: false; reason: VerifyFailure; id?: string };

export interface TokenPage {
  values: TokenInfo[];
  isLastPage: boolean;
  nextStart?: number;
}

const MAX_TOKEN_LENGTH = 256;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const infos = new WeakMap<TokenRecord, TokenInfo>();

/** The public view of a record: no hash, ISO times. Memoised per record (cached records reuse it). */
export function toTokenInfo(record: TokenRecord): TokenInfo {
  const known = infos.get(record);
  if (known !== undefined) return known;
  const info: TokenInfo = {
    id: record.id,
    user: record.user,
    name: record.name,
    scope: record.scope,
    createdAt: new Date(record.createdAt).toISOString(),
    createdBy: record.createdBy,
    expiresAt: iso(record.expiresAt),
    lastUsedAt: iso(record.lastUsedAt),
    lastUsedIp: record.lastUsedIp,
    allowedIps: record.allowedIps,
    requiredHeaders: record.requiredHeaders,
    resources: record.resources,
  };
  infos.set(record, info);
  return info;
}

export function validateExpiryPolicy(expiry: ExpiryPolicy | undefined): ExpiryPolicy {
  if (expiry === undefined) return {};
  if (typeof expiry !== 'object' || expiry === null) throw new TypeError('`expiry` must be an object');
  for (const key of ['defaultDays', 'maxDays'] as const) {
    if (expiry[key] !== undefined && !isDayCount(expiry[key])) {
      throw new TypeError(`\`expiry.${key}\` must be a whole number of days from 1 to 36500`);
    }
  }
  if (
    expiry.defaultDays !== undefined &&
    expiry.maxDays !== undefined &&
    expiry.defaultDays > expiry.maxDays
  ) {
    throw new TypeError('`expiry.defaultDays` must not exceed `expiry.maxDays`');
  }
  return expiry;
}

/**
 * Creates, verifies, lists, renames and revokes tokens. Reached as `gate.tokens`.
 * @example
 * const { token, info } = await gate.tokens.create({ user: 'alice', name: 'CI', scope: 'read' });
 */
export class TokenService {
  /** The verified-token cache (exposed for metrics and tests). */
  readonly cache: VerifiedTokenCache;
  readonly tokenPrefix: string;
  /**
   * Whether cached verifications may be used. The gate clears it while a store's revocation
   * feed is not yet up, so a revocation made elsewhere can never be missed.
   */
  cacheTrusted = true;
  private readonly store: TokenStore;
  private readonly hasher: TokenHasher;
  private readonly expiry: ExpiryPolicy;
  private readonly timeoutMs: number;
  private readonly touchIntervalMs: number;
  private readonly slowChecks: Semaphore | undefined;
  private readonly lastTouch = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<VerifyOutcome>>();
  private readonly now: () => number;

  constructor(options: TokenServiceOptions) {
    this.store = options.store;
    this.hasher = options.hasher;
    this.tokenPrefix = options.tokenPrefix;
    this.expiry = validateExpiryPolicy(options.expiry);
    this.cache = new VerifiedTokenCache(options.cache);
    this.timeoutMs = options.storeTimeoutMs ?? 2_000;
    this.touchIntervalMs = options.touchIntervalMs ?? 60_000;
    this.slowChecks = this.hasher.slow ? new Semaphore(options.maxConcurrentSlowChecks ?? 4, 256) : undefined;
    this.now = options.now ?? Date.now;
  }

  /** Creates a token. The returned `token` string is the only copy of the secret: show it once. */
  async create(input: CreateTokenInput): Promise<{ token: string; info: TokenInfo }> {
    if (typeof input !== 'object' || input === null)
      throw new ValidationError('input', 'A token needs a user, a name and a scope.');
    const user = validateUser(input.user);
    const now = this.now();
    const record: TokenRecord = {
      id: '',
      user,
      name: validateName(input.name),
      scope: validateScope(input.scope),
      hash: '',
      createdAt: now,
      createdBy: input.createdBy === undefined ? user : validateUser(input.createdBy, 'createdBy'),
      expiresAt: this.expiryFor(parseInstant(input.expiresAt, 'expiresAt'), now),
      lastUsedAt: null,
      lastUsedIp: null,
      allowedIps: null,
      requiredHeaders: null,
      resources: null,
      upstream: null,
    };
    const { token, id, secret } = generateToken(this.tokenPrefix);
    record.id = id;
    record.hash = await this.hasher.hash(id + secret);
    await this.call(() => this.store.put(record));
    return { token, info: toTokenInfo(record) };
  }

  /** Expiry from a requested time or from the policy. Beyond `maxDays` is an error, not clamped. */
  private expiryFor(requested: number | null, now: number): number | null {
    const { defaultDays, maxDays } = this.expiry;
    const max = maxDays === undefined ? null : now + daysToMs(maxDays);
    if (requested === null) {
      const days = defaultDays ?? maxDays;
      return days === undefined ? null : now + daysToMs(days);
    }
    if (requested <= now) throw new ValidationError('expiresAt', '`expiresAt` must be in the future.');
    if (max !== null && requested > max + 60_000) {
      throw new ValidationError('expiresAt', `Tokens may live at most ${maxDays} days.`);
    }
    return requested;
  }

  /** The token's info when it is valid now, else null. Rejects with a StoreError when the store fails. */
  async verify(token: string): Promise<TokenInfo | null> {
    const outcome = await this.check(token);
    return outcome.ok ? toTokenInfo(outcome.record) : null;
  }

  /**
   * The outcome from the verified-token cache alone, without waiting for anything; undefined
   * when the cache cannot answer. The request path's fast lane.
   */
  checkCached(token: string): VerifyOutcome | undefined {
    return this.cachedOutcome(VerifiedTokenCache.keyOf(token));
  }

  private cachedOutcome(key: string): VerifyOutcome | undefined {
    if (!this.cacheTrusted) return undefined;
    const now = this.now();
    const cached = this.cache.get(key, now);
    if (cached === undefined) return undefined;
    return cached.expiresAt !== null && cached.expiresAt <= now
      ? { ok: false, reason: 'expired', id: cached.id }
      : { ok: true, record: cached };
  }

  /**
   * Verification with the reason of a failure, for the request path. Concurrent checks of one
   * token share a single lookup (and a single bcrypt run) instead of stampeding the store.
   */
  check(token: string): Promise<VerifyOutcome> {
    // Nothing that is not a plausible token string is hashed or looked up.
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH)
      return Promise.resolve({ ok: false, reason: 'malformed' });
    const key = VerifiedTokenCache.keyOf(token);
    const fromCache = this.cachedOutcome(key);
    if (fromCache !== undefined) return Promise.resolve(fromCache);
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending;
    const check = this.checkUncached(token, key).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, check);
    return check;
  }

  private async checkUncached(token: string, key: string): Promise<VerifyOutcome> {
    const now = this.now();
    const parsed = parseToken(token, this.tokenPrefix);
    if (parsed === null) return { ok: false, reason: 'malformed' };
    const { id, secret } = parsed;
    if (this.slowChecks && this.cache.failedRecently(key, now)) return { ok: false, reason: 'mismatch', id };
    const record = await this.call(() => this.store.get(id));
    if (record === null || record.id !== id) return { ok: false, reason: 'unknown', id };
    // A slow hash is checked once per token: later look-ups that find the same stored hash
    // (not revoked, not re-issued) need not run bcrypt again for the same secret.
    const matches = this.slowChecks
      ? this.cache.verifiedBefore(key, record.hash) ||
        (await this.slowChecks.run(() => this.hasher.verify(id + secret, record.hash)))
      : await this.hasher.verify(id + secret, record.hash);
    if (!matches) {
      if (this.slowChecks) this.cache.rememberFailure(key, now);
      return { ok: false, reason: 'mismatch', id };
    }
    if (record.expiresAt !== null && record.expiresAt <= this.now())
      return { ok: false, reason: 'expired', id };
    if (this.slowChecks) this.cache.rememberVerified(key, record.hash);
    if (this.cacheTrusted) this.cache.set(key, record, now);
    return { ok: true, record };
  }

  /**
   * Records a use: the first at once, later ones at most once per `touchIntervalMs`.
   * Fire and forget: a failed write never fails the request it describes.
   */
  noteUse(record: TokenRecord, ip: string | null): void {
    const now = this.now();
    const last = this.lastTouch.get(record.id) ?? record.lastUsedAt;
    if (last !== null && last !== undefined && now - last < this.touchIntervalMs) return;
    if (this.lastTouch.size >= 100_000) this.lastTouch.clear();
    this.lastTouch.set(record.id, now);
    this.call(() => this.store.touch(record.id, now, ip)).catch(() => {
      this.lastTouch.delete(record.id);
    });
  }

  /** One token's info, or null for an unknown (or malformed) id. */
  async get(id: string): Promise<TokenInfo | null> {
    if (!isTokenId(id)) return null;
    const record = await this.call(() => this.store.get(id));
    return record === null || this.isExpired(record) ? null : toTokenInfo(record);
  }

  /** A user's live tokens, newest first. User names match case-insensitively. */
  async list(user: string): Promise<TokenInfo[]> {
    validateUser(user);
    const records = await this.call(() => this.store.listByUser(user));
    return records.filter((r) => !this.isExpired(r)).map(toTokenInfo);
  }

  /** Renames a token; null when the id is unknown. */
  async rename(id: string, name: string): Promise<TokenInfo | null> {
    const valid = validateName(name);
    if (!isTokenId(id)) return null;
    const renamed = await this.call(() => this.store.update(id, { name: valid }));
    if (!renamed) return null;
    this.cache.deleteId(id);
    return this.get(id);
  }

  /** Revokes a token at once, here and (through the store's feed) on every instance. Idempotent. */
  async revoke(id: string): Promise<boolean> {
    if (!isTokenId(id)) return false;
    const existed = await this.call(() => this.store.delete(id));
    this.cache.deleteId(id);
    this.lastTouch.delete(id);
    return existed;
  }

  /** The token manager: every user's tokens, filtered, newest first. */
  async search(query: TokenQuery): Promise<TokenPage> {
    const page = await this.call(() => this.store.search(query));
    const values = page.values.filter((r) => !this.isExpired(r)).map(toTokenInfo);
    return page.nextStart === undefined
      ? { values, isLastPage: page.isLastPage }
      : { values, isLastPage: page.isLastPage, nextStart: page.nextStart };
  }

  /** Drops cached verifications: one id, or everything for `'*'`. Wired to the store's feed. */
  forget(id: string): void {
    if (id === '*') this.cache.clear();
    else this.cache.deleteId(id);
  }

  private isExpired(record: TokenRecord): boolean {
    return record.expiresAt !== null && record.expiresAt <= this.now();
  }

  private call<T>(work: () => Promise<T>): Promise<T> {
    return storeCall(work, this.timeoutMs);
  }
}
