import { hash } from 'node:crypto';
import type { TokenRecord } from '../stores/token-store.js';

export interface CacheOptions {
  /** Most verified tokens kept. Default 10,000. 0 disables the cache. */
  maxEntries?: number;
  /** How long a verification is trusted without asking the store. Default 5,000 ms. */
  ttlMs?: number;
  /** How long a wrong secret is remembered (slow hashers only). Default 60,000 ms. */
  failureTtlMs?: number;
}

interface Entry {
  record: TokenRecord;
  until: number;
}

/**
 * Verified-token cache, keyed by a SHA-256 of the token so memory never holds a raw token.
 * Bounded (oldest out first), short-lived, and dropped by id on revocation.
 */
export class VerifiedTokenCache {
  readonly maxEntries: number;
  readonly ttlMs: number;
  private readonly failureTtlMs: number;
  private readonly entries = new Map<string, Entry>();
  private readonly keyById = new Map<string, string>();
  private readonly failures = new Map<string, number>();
  private readonly verifiedHashes = new Map<string, string>();

  constructor(options: Readonly<CacheOptions> = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.ttlMs = options.ttlMs ?? 5_000;
    this.failureTtlMs = options.failureTtlMs ?? 60_000;
  }

  /** The cache key of a token string. */
  static keyOf(token: string): string {
    return hash('sha256', token, 'base64');
  }

  get(key: string, now: number): TokenRecord | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until <= now) {
      this.remove(key, entry.record.id);
      return undefined;
    }
    return entry.record;
  }

  set(key: string, record: TokenRecord, now: number): void {
    if (this.maxEntries === 0) return;
    if (!this.entries.has(key) && this.entries.size >= this.maxEntries) this.evictOldest(this.entries, true);
    this.entries.set(key, { record, until: now + this.ttlMs });
    this.keyById.set(record.id, key);
  }

  /** Drops a revoked (or renamed) token. */
  deleteId(id: string): void {
    const key = this.keyById.get(id);
    if (key !== undefined) this.remove(key, id);
  }

  clear(): void {
    this.entries.clear();
    this.keyById.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Remembers a wrong secret briefly, so a repeated bad token costs no second slow hash. */
  rememberFailure(key: string, now: number): void {
    if (this.failures.size >= this.maxEntries) this.evictOldest(this.failures, false);
    this.failures.set(key, now + this.failureTtlMs);
  }

  failedRecently(key: string, now: number): boolean {
    const until = this.failures.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.failures.delete(key);
    return false;
  }

  /** Remembers that this token matched this stored (slow) hash. */
  rememberVerified(key: string, storedHash: string): void {
    if (this.verifiedHashes.size >= this.maxEntries) this.evictOldest(this.verifiedHashes, false);
    this.verifiedHashes.set(key, storedHash);
  }

  /** True when this token matched exactly this stored hash before. */
  verifiedBefore(key: string, storedHash: string): boolean {
    return this.verifiedHashes.get(key) === storedHash;
  }

  private remove(key: string, id: string): void {
    this.entries.delete(key);
    if (this.keyById.get(id) === key) this.keyById.delete(id);
  }

  private evictOldest(map: Map<string, unknown>, indexed: boolean): void {
    const oldest = map.keys().next();
    if (oldest.done) return;
    if (indexed) {
      const entry = this.entries.get(oldest.value);
      if (entry) this.remove(oldest.value, entry.record.id);
    } else {
      map.delete(oldest.value);
    }
  }
}
