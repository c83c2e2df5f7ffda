/**
 * The parts of an ioredis client that `RedisTokenStore` calls, declared here so that the
 * package's types never import `ioredis`: a TypeScript project without ioredis still compiles.
 * An ioredis 5 or 6 `Redis` (single node or Sentinel) or `Cluster` fits as it is.
 */
export interface RedisClientLike {
  /** True for an ioredis `Cluster`. */
  readonly isCluster: boolean;
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  hgetall(key: string): Promise<Record<string, string>>;
  zrevrange(key: string, start: number, stop: number): Promise<string[]>;
  zrevrange(key: string, start: number, stop: number, withScores: 'WITHSCORES'): Promise<string[]>;
  zcard(key: string): Promise<number>;
  get(key: string): Promise<string | null>;
  publish(channel: string, message: string): Promise<number>;
  /** A second connection with the same settings (the store subscribes on it). */
  duplicate(...args: unknown[]): RedisSubscriberLike;
}

/** What the store needs of the duplicate it listens for revocations on. */
export interface RedisSubscriberLike {
  // biome-ignore lint/suspicious/noExplicitAny: ioredis types listeners with any[]; anything narrower rejects its Cluster
  on(event: string, listener: (...args: any[]) => void): unknown;
  subscribe(channel: string): Promise<unknown>;
  removeAllListeners(event?: string): unknown;
  disconnect(): void;
}
