import type { TokenRecord } from '../model.js';
import { EXPIRED_RETENTION_MS, type TokenStore } from '../stores/token-store.js';
import { isTombstone } from '../tokens/tombstone.js';
import type { UpstreamDeletions } from './upstream-deletions.js';

const BATCH = 500;

/**
 * Deletes the Bitbucket tokens of expired tokens. With a store that retains expired records
 * (`expiringBetween`), each pass reads the tokens that expired since the last one, and the first
 * pass after a start looks back over the whole retention (a day), so deletions due while no
 * instance ran, and tombstones of revoked tokens whose deletion failed, are carried out then.
 * Other stores: each pass watches the live tokens that expire before the next pass (`search`),
 * and deletes once they expired — while this process runs.
 */
export class ExpirySweep {
  readonly #store: TokenStore;
  readonly #deletions: UpstreamDeletions;
  readonly #intervalMs: number;
  readonly #timer: NodeJS.Timeout;
  readonly #first: NodeJS.Immediate;
  readonly #watched = new Map<string, TokenRecord>();
  #last: number;
  #running: Promise<void> | undefined;

  constructor(store: TokenStore, deletions: UpstreamDeletions, intervalMs: number, now = Date.now()) {
    this.#store = store;
    this.#deletions = deletions;
    this.#intervalMs = intervalMs;
    this.#last = now - EXPIRED_RETENTION_MS;
    this.#timer = setInterval(() => void this.tick(), intervalMs);
    this.#timer.unref();
    // The first pass at once: deletions that fell due while no instance ran are not kept waiting.
    this.#first = setImmediate(() => void this.tick());
    this.#first.unref();
  }

  /** One pass; resolves when it is done. Concurrent calls share it. */
  tick(now = Date.now()): Promise<void> {
    this.#running ??= this.#pass(now).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  stop(): void {
    clearInterval(this.#timer);
    clearImmediate(this.#first);
  }

  async #pass(now: number): Promise<void> {
    try {
      if (this.#store.expiringBetween !== undefined) await this.#expiredSince(this.#last, now);
      else await this.#watchExpiring(now);
      this.#last = now;
    } catch {
      // The store is down: the same window is read again on the next pass.
    }
  }

  async #expiredSince(after: number, upTo: number): Promise<void> {
    let from = after;
    for (;;) {
      const records = await this.#store.expiringBetween!(from, upTo, BATCH);
      for (const record of records)
        if (record.upstream !== null)
          await this.#deletions.release(record, isTombstone(record) ? 'revoked' : 'expired');
      if (records.length < BATCH) return;
      const lastAt = records[records.length - 1]!.expiresAt!;
      from = lastAt - 1 > from ? lastAt - 1 : lastAt;
    }
  }

  async #watchExpiring(now: number): Promise<void> {
    const horizon = now + 2 * this.#intervalMs;
    for (let start: number | undefined = 0; start !== undefined; ) {
      const page = await this.#store.search({ expiresBefore: horizon, start, limit: BATCH });
      for (const record of page.values) if (record.upstream !== null) this.#watched.set(record.id, record);
      start = page.isLastPage ? undefined : page.nextStart;
    }
    for (const [id, record] of this.#watched) {
      if (record.expiresAt === null || record.expiresAt > now) continue;
      this.#watched.delete(id);
      await this.#deletions.release(record, 'expired');
    }
  }
}
