import { BoundedCache } from './bounded-cache.js';

/** In-process counters over fixed windows, bounded in size: failure counts without a shared store. */
export class FixedWindowCounter {
  readonly #windows: BoundedCache<string, { count: number }>;

  constructor(maxKeys = 100_000) {
    this.#windows = new BoundedCache(maxKeys);
  }

  /** Adds one to `key` and returns the count in its current window. */
  add(key: string, windowMs: number, now = Date.now()): number {
    const window = this.#windows.get(key, now);
    if (window !== undefined) return ++window.count;
    this.#windows.set(key, { count: 1 }, windowMs, now);
    return 1;
  }

  count(key: string, now = Date.now()): number {
    return this.#windows.get(key, now)?.count ?? 0;
  }

  /** Drops windows that have ended. */
  sweep(now = Date.now()): void {
    this.#windows.sweep(now);
  }
}
