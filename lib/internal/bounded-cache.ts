interface Entry<V> {
  value: V;
  until: number;
}

/**
 * The library's one bounded cache: a Map with a size bound and a lifetime per entry. When full,
 * the entry set longest ago goes first (one entry, never the whole cache, so flooding it with
 * fresh keys cannot wipe what it holds). Reads do not reorder, so a hit costs one Map lookup.
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();

  /**
   * @param maxEntries most entries kept; 0 keeps nothing.
   * @param ttlMs default lifetime of an entry; `Infinity` for entries that never expire.
   */
  constructor(
    readonly maxEntries: number,
    readonly ttlMs = Number.POSITIVE_INFINITY,
  ) {}

  get(key: K, now?: number): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    // Entries that never expire skip the clock.
    if (entry.until !== Number.POSITIVE_INFINITY && entry.until <= (now ?? Date.now())) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  has(key: K, now?: number): boolean {
    return this.get(key, now) !== undefined;
  }

  /** When the entry under `key` expires, or undefined when there is none. */
  expiresAt(key: K, now?: number): number | undefined {
    return this.get(key, now) === undefined ? undefined : this.entries.get(key)!.until;
  }

  set(key: K, value: V, ttlMs = this.ttlMs, now = Date.now()): void {
    if (this.maxEntries === 0) return;
    // Re-inserted, so the eviction order follows the latest write.
    if (!this.entries.delete(key) && this.entries.size >= this.maxEntries) this.evictOne(now);
    this.entries.set(key, { value, until: now + ttlMs });
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Drops every expired entry. */
  sweep(now = Date.now()): void {
    for (const [key, entry] of this.entries) if (entry.until <= now) this.entries.delete(key);
  }

  /** Live entries, oldest write first. */
  *[Symbol.iterator](): IterableIterator<[K, V]> {
    const now = Date.now();
    for (const [key, entry] of this.entries) if (entry.until > now) yield [key, entry.value];
  }

  private evictOne(now: number): void {
    const oldest = this.entries.entries().next();
    if (oldest.done) return;
    // An expired entry at the front makes room for free; otherwise the oldest write goes.
    const [key, entry] = oldest.value;
    if (entry.until > now) this.entries.delete(key);
    else this.sweep(now);
  }
}
