/** In-process counters over fixed windows, bounded in size: the memory store's failure counts. */
export class FixedWindowCounter {
  private readonly windows = new Map<string, { count: number; until: number }>();

  constructor(private readonly maxKeys = 100_000) {}

  /** Adds one to `key` and returns the count in its current window. */
  add(key: string, windowMs: number, now = Date.now()): number {
    const entry = this.windows.get(key);
    if (entry !== undefined && entry.until > now) return ++entry.count;
    if (this.windows.size >= this.maxKeys) this.sweep(now);
    if (this.windows.size >= this.maxKeys) this.windows.clear();
    this.windows.set(key, { count: 1, until: now + windowMs });
    return 1;
  }

  count(key: string, now = Date.now()): number {
    const entry = this.windows.get(key);
    return entry === undefined || entry.until <= now ? 0 : entry.count;
  }

  /** Drops windows that have ended. */
  sweep(now = Date.now()): void {
    for (const [key, entry] of this.windows) if (entry.until <= now) this.windows.delete(key);
  }
}
