import { FixedWindowCounter } from '../internal/fixed-window-counter.js';
import { matchesQuery } from './token-query.js';
import type {
  RevocationListener,
  TokenChanges,
  TokenQuery,
  TokenRecord,
  TokenSearchPage,
  TokenStore,
} from './token-store.js';

export interface MemoryTokenStoreOptions {
  /** How often expired tokens are swept out. Default 60,000 ms. */
  sweepIntervalMs?: number;
}

/**
 * The embedded default: tokens in this process only. Right for one instance and for tests;
 * a fleet of proxies shares tokens and revocations through `RedisTokenStore`.
 */
export class MemoryTokenStore implements TokenStore {
  private readonly records = new Map<string, TokenRecord>();
  private readonly byUser = new Map<string, Set<string>>();
  private readonly failures = new FixedWindowCounter();
  private readonly listeners = new Set<RevocationListener>();
  private readonly timer: NodeJS.Timeout;

  constructor(options: Readonly<MemoryTokenStoreOptions> = {}) {
    const interval = options.sweepIntervalMs ?? 60_000;
    if (!Number.isInteger(interval) || interval < 1)
      throw new TypeError('`sweepIntervalMs` must be a positive integer');
    this.timer = setInterval(() => this.sweep(Date.now()), interval);
    this.timer.unref();
  }

  async put(record: TokenRecord): Promise<void> {
    this.records.delete(record.id);
    this.records.set(record.id, { ...record });
    const key = record.user.toLowerCase();
    const ids = this.byUser.get(key) ?? new Set<string>();
    this.byUser.set(key, ids.add(record.id));
  }

  async get(id: string): Promise<TokenRecord | null> {
    const record = this.live(id, Date.now());
    return record === undefined ? null : { ...record };
  }

  async listByUser(user: string): Promise<TokenRecord[]> {
    const now = Date.now();
    const out: TokenRecord[] = [];
    for (const id of this.byUser.get(user.toLowerCase()) ?? []) {
      const record = this.live(id, now);
      if (record) out.push({ ...record });
    }
    return out.sort(newestFirst);
  }

  async update(id: string, changes: TokenChanges): Promise<boolean> {
    const record = this.live(id, Date.now());
    if (record) Object.assign(record, changes);
    return record !== undefined;
  }

  async delete(id: string): Promise<boolean> {
    const existed = this.remove(id);
    for (const listener of this.listeners) listener(id);
    return existed;
  }

  async touch(id: string, at: number, ip: string | null): Promise<void> {
    const record = this.live(id, Date.now());
    if (record) {
      record.lastUsedAt = at;
      record.lastUsedIp = ip;
    }
  }

  async search(query: TokenQuery): Promise<TokenSearchPage> {
    const now = Date.now();
    // Map order is creation order: walk it newest first.
    const ordered = [...this.records.values()].reverse();
    const values: TokenRecord[] = [];
    let position = query.start;
    for (; position < ordered.length && values.length < query.limit; position++) {
      const record = ordered[position]!;
      if ((record.expiresAt === null || record.expiresAt > now) && matchesQuery(record, query))
        values.push({ ...record });
    }
    return position >= ordered.length
      ? { values, isLastPage: true }
      : { values, isLastPage: false, nextStart: position };
  }

  async countFailure(key: string, windowMs: number): Promise<number> {
    return this.failures.add(key, windowMs);
  }

  async failureCount(key: string): Promise<number> {
    return this.failures.count(key);
  }

  async subscribe(onRevoked: RevocationListener): Promise<() => Promise<void>> {
    this.listeners.add(onRevoked);
    return async () => {
      this.listeners.delete(onRevoked);
    };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.listeners.clear();
  }

  /** Number of live and not yet swept tokens (for metrics). */
  get size(): number {
    return this.records.size;
  }

  private live(id: string, now: number): TokenRecord | undefined {
    const record = this.records.get(id);
    if (record?.expiresAt != null && record.expiresAt <= now) {
      this.remove(id);
      return undefined;
    }
    return record;
  }

  private remove(id: string): boolean {
    const record = this.records.get(id);
    if (record === undefined) return false;
    this.records.delete(id);
    const key = record.user.toLowerCase();
    const ids = this.byUser.get(key);
    ids?.delete(id);
    if (ids?.size === 0) this.byUser.delete(key);
    return true;
  }

  private sweep(now: number): void {
    for (const [id, record] of this.records) {
      if (record.expiresAt !== null && record.expiresAt <= now) this.remove(id);
    }
    this.failures.sweep(now);
  }
}

function newestFirst(a: TokenRecord, b: TokenRecord): number {
  // Same order as a Redis sorted set read newest first: ties by id, descending.
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1);
}
