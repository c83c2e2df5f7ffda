import { FixedWindowCounter } from '../internal/fixed-window-counter.js';
import { integer, object, type Shape } from '../internal/options.js';
import { foldName } from '../validate.js';
import { copyRecord } from './record-codec.js';
import { isLive, matchesQuery } from './token-query.js';
import {
  type CountLimit,
  EXPIRED_RETENTION_MS,
  type RevocationListener,
  type TokenChanges,
  type TokenQuery,
  type TokenRecord,
  type TokenSearchPage,
  type TokenStore,
  userGroup,
  type WindowCount,
} from './token-store.js';

/**
 * Options of `MemoryTokenStore`.
 * @example
 * const options: MemoryTokenStoreOptions = { sweepIntervalMs: 10_000 };
 * const store = new MemoryTokenStore(options);
 */
export interface MemoryTokenStoreOptions {
  /** How often expired tokens (past their retention), failure windows and claims are swept out. Default 60,000 ms. */
  sweepIntervalMs?: number;
}

const OPTIONS: Shape<MemoryTokenStoreOptions> = { sweepIntervalMs: integer() };

/**
 * The embedded store for tests and throw-away setups: tokens in this process only, gone on
 * restart. One durable instance uses `SqliteTokenStore`; a fleet `PostgresTokenStore` or
 * `RedisTokenStore`.
 * @example
 * const gate = createTokenGate({ store: new MemoryTokenStore() });
 */
export class MemoryTokenStore implements TokenStore {
  readonly kind = 'memory';
  /** Held and handed out as copies (lists included), so callers cannot edit stored state. */
  private readonly records = new Map<string, TokenRecord>();
  private readonly byUser = new Map<string, Set<string>>();
  /** Counting groups: group → its members' ids; and each record's group. */
  private readonly groups = new Map<string, Set<string>>();
  private readonly groupOf = new Map<string, string>();
  private readonly failures = new FixedWindowCounter();
  /** Claim key → when the claim lapses. Lapsed claims are swept, never evicted early. */
  private readonly claims = new Map<string, number>();
  /** Keyed values (`putValue`) → value and when it lapses. */
  private readonly values = new Map<string, { value: string; until: number }>();
  private readonly listeners = new Set<RevocationListener>();
  private readonly timer: NodeJS.Timeout;

  constructor(options: Readonly<MemoryTokenStoreOptions> = {}) {
    object(OPTIONS)(options, '');
    const interval = options.sweepIntervalMs ?? 60_000;
    this.timer = setInterval(() => this.sweep(Date.now()), interval);
    this.timer.unref();
  }

  async put(record: TokenRecord): Promise<void> {
    this.store(record, userGroup(record.user));
  }

  async putCounted(record: TokenRecord, limit: CountLimit): Promise<boolean> {
    // Synchronous from the check to the write: nothing else runs in between.
    if (this.liveIn(limit.group, record.id, limit.max) >= limit.max) return false;
    this.store(record, limit.group);
    return true;
  }

  private store(record: TokenRecord, group: string): void {
    this.remove(record.id);
    this.records.set(record.id, copyRecord(record));
    const key = foldName(record.user);
    const ids = this.byUser.get(key) ?? new Set<string>();
    this.byUser.set(key, ids.add(record.id));
    const members = this.groups.get(group) ?? new Set<string>();
    this.groups.set(group, members.add(record.id));
    this.groupOf.set(record.id, group);
  }

  /**
   * Live tokens counted in `group`, not counting `except` (an id about to be overwritten).
   * Members that expired are dropped only when the group looks full, so a create costs O(1)
   * until then.
   */
  private liveIn(group: string, except: string, max: number): number {
    const members = this.groups.get(group);
    if (members === undefined) return 0;
    const counted = () => members.size - (members.has(except) ? 1 : 0);
    if (counted() < max) return counted();
    const now = Date.now();
    for (const id of members) {
      if (this.live(id, now) !== undefined) continue;
      members.delete(id);
      this.groupOf.delete(id);
    }
    return counted();
  }

  async get(id: string): Promise<TokenRecord | null> {
    const record = this.live(id, Date.now());
    return record === undefined ? null : copyRecord(record);
  }

  async listByUser(user: string): Promise<TokenRecord[]> {
    const now = Date.now();
    const out: TokenRecord[] = [];
    for (const id of this.byUser.get(foldName(user)) ?? []) {
      const record = this.live(id, now);
      if (record) out.push(copyRecord(record));
    }
    return out.sort(newestFirst);
  }

  async update(id: string, changes: TokenChanges): Promise<boolean> {
    const record = this.live(id, Date.now());
    if (record === undefined) return false;
    const defined = Object.entries(changes).filter(([, value]) => value !== undefined);
    // Set on an existing key: the record keeps its place in creation order.
    this.records.set(id, copyRecord({ ...record, ...Object.fromEntries(defined) }));
    for (const listener of this.listeners) listener(id);
    return true;
  }

  async delete(id: string): Promise<boolean> {
    const existed = this.live(id, Date.now()) !== undefined;
    this.remove(id);
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
      if (isLive(record, now) && matchesQuery(record, query)) values.push(copyRecord(record));
    }
    return position >= ordered.length
      ? { values, isLastPage: true }
      : { values, isLastPage: false, nextStart: position };
  }

  async countFailure(key: string, windowMs: number): Promise<number> {
    return this.failures.add(key, windowMs);
  }

  async increment(key: string, by: number, windowMs: number): Promise<WindowCount> {
    return this.failures.addBy(key, by, windowMs);
  }

  async failureCount(key: string): Promise<number> {
    return this.failures.count(key);
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const until = this.claims.get(key);
    if (until !== undefined && until > now) return false;
    this.claims.set(key, now + ttlMs);
    return true;
  }

  async putValue(key: string, value: string, ttlMs: number): Promise<void> {
    this.values.set(key, { value, until: Date.now() + ttlMs });
  }

  async getValue(key: string): Promise<string | null> {
    const held = this.values.get(key);
    return held !== undefined && held.until > Date.now() ? held.value : null;
  }

  async takeValue(key: string): Promise<string | null> {
    const value = await this.getValue(key);
    this.values.delete(key);
    return value;
  }

  async expiringBetween(after: number, upTo: number, limit: number): Promise<TokenRecord[]> {
    const floor = Math.max(after, Date.now() - EXPIRED_RETENTION_MS);
    const found: TokenRecord[] = [];
    for (const record of this.records.values()) {
      if (record.expiresAt !== null && record.expiresAt > floor && record.expiresAt <= upTo)
        found.push(record);
    }
    return found
      .sort((a, b) => a.expiresAt! - b.expiresAt! || (a.id < b.id ? -1 : 1))
      .slice(0, limit)
      .map(copyRecord);
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

  /** Number of records held, live or expired within their retention (for metrics). */
  get size(): number {
    return this.records.size;
  }

  private live(id: string, now: number): TokenRecord | undefined {
    const record = this.records.get(id);
    return record !== undefined && isLive(record, now) ? record : undefined;
  }

  private remove(id: string): void {
    const record = this.records.get(id);
    if (record === undefined) return;
    this.records.delete(id);
    const key = foldName(record.user);
    const ids = this.byUser.get(key);
    ids?.delete(id);
    if (ids?.size === 0) this.byUser.delete(key);
    const group = this.groupOf.get(id);
    if (group === undefined) return;
    this.groupOf.delete(id);
    const members = this.groups.get(group);
    members?.delete(id);
    if (members?.size === 0) this.groups.delete(group);
  }

  private sweep(now: number): void {
    for (const [id, record] of this.records) {
      if (record.expiresAt !== null && record.expiresAt + EXPIRED_RETENTION_MS <= now) this.remove(id);
    }
    for (const [key, until] of this.claims) if (until <= now) this.claims.delete(key);
    for (const [key, held] of this.values) if (held.until <= now) this.values.delete(key);
    this.failures.sweep(now);
  }
}

function newestFirst(a: TokenRecord, b: TokenRecord): number {
  // Same order as a Redis sorted set read newest first: ties by id, descending.
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1);
}
