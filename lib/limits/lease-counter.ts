import { BoundedCache } from '../internal/bounded-cache.js';
import { FixedWindowCounter } from '../internal/fixed-window-counter.js';
import { storeCall } from '../internal/with-timeout.js';
import type { TokenStore, WindowCount } from '../stores/token-store.js';

/**
 * One limited key on this instance: the part of the fleet-wide count it reserved and has not
 * used yet. The store's counter counts reservations, not requests; a lease is handed out
 * only up to the limit, so the fleet never passes more than `limit` in a window. What may be
 * lost is the unused rest of other instances' leases (at most `batch - 1` each).
 */
export interface Lease {
  /** Requests this instance may still pass in the current window without asking the store. */
  left: number;
  /** The fleet-wide count after this instance's last reservation (others' leases included). */
  reserved: number;
  /** When the store's window ends (epoch ms). */
  resetAt: number;
  /** The reservation under way, which requests arriving meanwhile wait for. */
  pending: Promise<void> | undefined;
  /** Until when the store is not asked again after it failed (counted here meanwhile). */
  localUntil: number;
}

/** How many requests one reservation takes: a twentieth of the limit, 1 to 100. */
export function batchFor(limit: number): number {
  return Math.max(1, Math.min(100, Math.floor(limit / 20)));
}

/** Least time between two attempts to reach a failed store: meanwhile each instance counts alone. */
const LOCAL_MS = 5_000;

/**
 * Counts requests against limits fleet-wide through `TokenStore.increment`, reserving them in
 * batches, so a request costs a store round trip only once per batch. A store that fails (or
 * has no `increment`) does not refuse requests: each instance then counts on its own, so the
 * fleet passes at most `instances × limit` per window until the store answers again.
 */
export class LeaseCounter {
  readonly #leases = new BoundedCache<string, Lease>(100_000);
  readonly #local = new FixedWindowCounter();
  readonly #increment: ((key: string, by: number, windowMs: number) => Promise<WindowCount>) | undefined;
  readonly #timeoutMs: number;
  readonly #onStoreError: (err: unknown) => void;

  constructor(store: TokenStore, timeoutMs: number, onStoreError: (err: unknown) => void) {
    const increment = store.increment;
    this.#increment = increment === undefined ? undefined : increment.bind(store);
    this.#timeoutMs = timeoutMs;
    this.#onStoreError = onStoreError;
  }

  /**
   * Takes one request under `key`: the lease when it may pass, null when the limit is reached
   * in this window, or a promise when a reservation must be made first (call again after it).
   */
  take(key: string, limit: number, windowMs: number, now: number): Lease | null | Promise<void> {
    let lease = this.#leases.get(key, now);
    if (lease === undefined) {
      lease = { left: 0, reserved: 0, resetAt: 0, pending: undefined, localUntil: 0 };
      // Kept a little past its window so a refusal keeps answering without the store.
      this.#leases.set(key, lease, windowMs * 2, now);
    }
    if (now < lease.resetAt) {
      if (lease.left > 0) {
        lease.left--;
        return lease;
      }
      if (lease.reserved >= limit) return null;
    }
    if (lease.pending === undefined) lease.pending = this.#reserve(lease, key, limit, windowMs);
    return lease.pending;
  }

  /** When the window of `key` ends, as far as this instance knows. */
  resetAt(key: string, now: number): number {
    return this.#leases.get(key, now)?.resetAt ?? now;
  }

  async #reserve(lease: Lease, key: string, limit: number, windowMs: number): Promise<void> {
    const batch = batchFor(limit);
    try {
      const counted = await this.#count(lease, key, batch, windowMs);
      // Only the part of this batch below the limit is ours to hand out.
      // Reservations start with nothing left (or a lapsed window), so the grant replaces it.
      lease.left = Math.max(0, Math.min(batch, limit - (counted.count - batch)));
      lease.reserved = counted.count;
      lease.resetAt = counted.resetAt;
    } finally {
      lease.pending = undefined;
    }
  }

  async #count(lease: Lease, key: string, batch: number, windowMs: number): Promise<WindowCount> {
    const now = Date.now();
    const increment = this.#increment;
    if (increment !== undefined && now >= lease.localUntil) {
      try {
        return await storeCall(() => increment(key, batch, windowMs), this.#timeoutMs);
      } catch (err) {
        this.#onStoreError(err);
        lease.localUntil = now + LOCAL_MS;
      }
    }
    return this.#local.addBy(key, batch, windowMs, now);
  }
}

/** What the headers report for one lease: requests left in the window (fleet-wide estimate). */
export function remainingOf(lease: Lease, limit: number): number {
  return Math.max(0, limit - lease.reserved) + lease.left;
}
