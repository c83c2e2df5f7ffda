/**
 * The parts of an ioredis client that `RedisTokenStore` calls, declared here so that the
 * package's types never import `ioredis`: a TypeScript project without ioredis still compiles.
 * An ioredis 5 or 6 `Redis` (single node or Sentinel) or `Cluster` fits as it is.
 * @example
 * import { Cluster } from 'ioredis';
 * const redis: RedisClientLike = new Cluster([{ host: 'redis-1', port: 7000 }], {
 *   redisOptions: { commandTimeout: 1000 },
 * });
 * const store = new RedisTokenStore({ redis });
 */
export interface RedisClientLike {
  /** True for an ioredis `Cluster`. */
  readonly isCluster: boolean;
  /** Runs a loaded Lua script by its SHA-1. */
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  /** Runs (and loads) a Lua script. */
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  /** `HGETALL`: a token's hash. */
  hgetall(key: string): Promise<Record<string, string>>;
  /** `ZREVRANGE`: an index, newest first. */
  zrevrange(key: string, start: number, stop: number): Promise<string[]>;
  /** `ZREVRANGE … WITHSCORES`. */
  zrevrange(key: string, start: number, stop: number, withScores: 'WITHSCORES'): Promise<string[]>;
  /** `ZCARD`: an index's size. */
  zcard(key: string): Promise<number>;
  /** `GET`: a failure counter. */
  get(key: string): Promise<string | null>;
  /** `PUBLISH`: announces a revocation or change. */
  publish(channel: string, message: string): Promise<number>;
  /** A second connection with the same settings (the store subscribes on it). */
  duplicate(...args: unknown[]): RedisSubscriberLike;
}

/**
 * What the store needs of the duplicate it listens for revocations on (`redis.duplicate()`).
 * @example
 * const subscriber: RedisSubscriberLike = redis.duplicate();
 * await subscriber.subscribe('bbt:revoked');
 * subscriber.on('message', (_channel: string, id: string) => console.log(`revoked: ${id}`));
 */
export interface RedisSubscriberLike {
  /** Listens for `message`, `ready`, `error`, `end`. */
  // biome-ignore lint/suspicious/noExplicitAny: ioredis types listeners with any[]; anything narrower rejects its Cluster
  on(event: string, listener: (...args: any[]) => void): unknown;
  /** `SUBSCRIBE` to the revocation channel. */
  subscribe(channel: string): Promise<unknown>;
  /** Drops the store's listeners. */
  removeAllListeners(event?: string): unknown;
  /** Closes the connection. */
  disconnect(): void;
}
