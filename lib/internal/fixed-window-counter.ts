import { BoundedCache } from './bounded-cache.js';

/** In-process counters over fixed windows, bounded in size: failure counts without a shared store. */
export class FixedWindowCounter {
  readonly #windows: BoundedCache<string, { count: number }>;

  constructor(maxKeys = 100_000) {
    this.#windows = new BoundedCache(maxKeys);
  }

  /** Adds one to `key` and returns the count in its current window. */
  add(key: string, windowMs: number, now = Date.now()): number {
    return this.addBy(key, 1, windowMs, now).count;
  }

  /** Adds `by` to `key`: the count in its current window and when that window ends. */
  addBy(key: string, by: number, windowMs: number, now = Date.now()): { count: number; resetAt: number } {
    const window = this.#windows.get(key, now);
    if (window !== undefined) {
      window.count += by;
      return { count: window.count, resetAt: this.#windows.expiresAt(key, now) ?? now + windowMs };
    }
    this.#windows.set(key, { count: by }, windowMs, now);
    return { count: by, resetAt: now + windowMs };
  }

  count(key: string, now = Date.now()): number {
    return this.#windows.get(key, now)?.count ?? 0;
  }

  /** Drops windows that have ended. */
  sweep(now = Date.now()): void {
    this.#windows.sweep(now);
  }
}
