import type { EventListener } from '../events.js';
import { BoundedCache } from '../internal/bounded-cache.js';
import { array, integer, type Shape } from '../internal/options.js';
import type { TokenRecord } from '../model.js';
import { EXPIRED_RETENTION_MS, type TokenStore } from '../stores/token-store.js';
import { daysToMs } from '../validate.js';
import { toTokenInfo } from './token-info.js';
import { isTombstone } from './tombstone.js';

/**
 * Expiry reminders: `token.expiring` events ahead of expiry, `token.expired` at it (the gate's
 * `reminders`; they need `onEvent` and a store with `expiringBetween`).
 * @example
 * createTokenGate({
 *   reminders: { leadDays: [14, 3] } satisfies ReminderOptions,
 *   onEvent: (event) => {
 *     if (event.type === 'token.expiring')
 *       console.log(`mail ${event.user}: "${event.name}" expires ${event.expiresAt}`);
 *   },
 * });
 */
export interface ReminderOptions {
  /** Days before expiry at which `token.expiring` is emitted. Default `[30, 7, 1]`. */
  leadDays?: readonly number[];
  /** How often the store is asked. Default 60,000 ms. */
  intervalMs?: number;
}

export const REMINDER_OPTIONS: Shape<ReminderOptions> = {
  leadDays: array(integer(1, 3_650)),
  intervalMs: integer(1_000, 86_400_000),
};

const BATCH = 500;

/**
 * Emits each reminder once per token and lead time across every instance sharing the store:
 * each tick asks the store for tokens whose reminder time passed since the last tick, and
 * claims `(token, lead, expiry)` in the store before emitting. A restart looks back one
 * retention period, so reminders due while no instance ran still go out (once).
 */
export class ExpiryReminders {
  readonly #store: TokenStore;
  readonly #emit: EventListener;
  readonly #leads: readonly number[];
  readonly #timer: NodeJS.Timeout;
  readonly #claimedHere = new BoundedCache<string, true>(100_000, 3 * EXPIRED_RETENTION_MS);
  #last: number;
  #running: Promise<void> | undefined;

  constructor(store: TokenStore, emit: EventListener, options: Readonly<ReminderOptions> = {}) {
    this.#store = store;
    this.#emit = emit;
    this.#leads = [...new Set(options.leadDays ?? [30, 7, 1])];
    this.#last = Date.now() - EXPIRED_RETENTION_MS;
    this.#timer = setInterval(() => void this.tick(), options.intervalMs ?? 60_000);
    this.#timer.unref();
  }

  /** One pass; resolves when it is done. Safe to call while another runs (they share it). */
  tick(now = Date.now()): Promise<void> {
    this.#running ??= this.#pass(now).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(now: number): Promise<void> {
    const since = this.#last;
    try {
      for (const lead of this.#leads) {
        const ahead = daysToMs(lead);
        await this.#each(since + ahead, now + ahead, async (record) => {
          if (record.expiresAt! <= now) return; // expired already: only `token.expired` is due
          // A token created inside a lead time gets no reminder for it: it was never further away.
          if (record.createdAt > record.expiresAt! - ahead) return;
          if (await this.#claim(`expiring:${record.id}:${lead}:${record.expiresAt}`, ahead))
            this.#send(record, 'token.expiring', lead);
        });
      }
      await this.#each(since, now, async (record) => {
        if (await this.#claim(`expired:${record.id}:${record.expiresAt}`, 0))
          this.#send(record, 'token.expired');
      });
      this.#last = now;
    } catch {
      // The store is down: try the same window again on the next tick.
    }
  }

  async #each(after: number, upTo: number, visit: (record: TokenRecord) => Promise<void>): Promise<void> {
    if (this.#store.expiringBetween === undefined || upTo <= after) return;
    let from = after;
    for (;;) {
      const records = await this.#store.expiringBetween(from, upTo, BATCH);
      // Tombstones are revoked tokens kept for their upstream deletion: neither expiring nor expired.
      for (const record of records) if (!isTombstone(record)) await visit(record);
      if (records.length < BATCH) return;
      // Step back one millisecond so ties at the page boundary are seen again (claims dedupe);
      // step past them only when a whole page shares one instant.
      const lastAt = records[records.length - 1]!.expiresAt!;
      from = lastAt - 1 > from ? lastAt - 1 : lastAt;
    }
  }

  async #claim(key: string, leadMs: number): Promise<boolean> {
    const ttl = leadMs + 2 * EXPIRED_RETENTION_MS;
    if (this.#store.claim !== undefined) return this.#store.claim(`reminder:${key}`, ttl);
    if (this.#claimedHere.has(key)) return false;
    this.#claimedHere.set(key, true);
    return true;
  }

  #send(record: TokenRecord, type: 'token.expiring' | 'token.expired', leadDays?: number): void {
    const info = toTokenInfo(record);
    this.#emit({
      type,
      time: new Date().toISOString(),
      clientIp: null,
      actor: 'system',
      user: info.user,
      tokenId: info.id,
      name: info.name,
      expiresAt: info.expiresAt!,
      ...(leadDays === undefined ? {} : { leadDays }),
    });
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
