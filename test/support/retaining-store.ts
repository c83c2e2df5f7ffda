import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import type {
  RevocationListener,
  TokenChanges,
  TokenQuery,
  TokenRecord,
  TokenSearchPage,
  TokenStore,
} from '../../lib/stores/token-store.js';

/**
 * A memory store that also keeps records put already expired (tombstones) and answers
 * `expiringBetween`, as the store contract's retention says: enough to test what the gate does
 * with a store that retains expired records, whatever the memory store of the day implements.
 * `failPuts` makes every `put` fail, as a store that is down.
 */
export class RetainingStore implements TokenStore {
  readonly inner = new MemoryTokenStore();
  readonly expired = new Map<string, TokenRecord>();
  failPuts = false;

  async put(record: TokenRecord): Promise<void> {
    if (this.failPuts) throw new Error('store down');
    if (record.expiresAt !== null && record.expiresAt <= Date.now()) {
      this.expired.set(record.id, { ...record });
      return;
    }
    this.expired.delete(record.id);
    await this.inner.put(record);
  }

  get(id: string): Promise<TokenRecord | null> {
    return this.inner.get(id);
  }

  listByUser(user: string): Promise<TokenRecord[]> {
    return this.inner.listByUser(user);
  }

  update(id: string, changes: TokenChanges): Promise<boolean> {
    return this.inner.update(id, changes);
  }

  async delete(id: string): Promise<boolean> {
    this.expired.delete(id);
    return this.inner.delete(id);
  }

  touch(id: string, at: number, ip: string | null): Promise<void> {
    return this.inner.touch(id, at, ip);
  }

  search(query: TokenQuery): Promise<TokenSearchPage> {
    return this.inner.search(query);
  }

  subscribe(onRevoked: RevocationListener): Promise<() => Promise<void>> {
    return this.inner.subscribe(onRevoked);
  }

  async expiringBetween(after: number, upTo: number, limit: number): Promise<TokenRecord[]> {
    const live = (await this.inner.search({ expiresBefore: upTo + 1, start: 0, limit: 100_000 })).values;
    return [...live, ...this.expired.values()]
      .filter((r) => r.expiresAt !== null && r.expiresAt > after && r.expiresAt <= upTo)
      .sort((a, b) => a.expiresAt! - b.expiresAt!)
      .slice(0, limit);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
