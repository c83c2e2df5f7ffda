import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** A Lua script sent by SHA1 and loaded on demand. Every script here touches keys of one slot. */
export class RedisScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis | Cluster, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** Writes the token hash and its expiry in one step. ARGV: expiresAt ('' = never), field, value, … */
export const PUT_TOKEN = new RedisScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return 1`);

/** Adds an id to an index zset whose key lives as long as its longest-lived token. ARGV: score, id, expiresAt ('' = never), now. */
export const INDEX_ADD = new RedisScript(`
local existed = redis.call('EXISTS', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '' then
  redis.call('PERSIST', KEYS[1])
else
  local ttl = redis.call('PTTL', KEYS[1])
  local wanted = tonumber(ARGV[3]) - tonumber(ARGV[4])
  if (existed == 0 or ttl >= 0) and wanted > ttl then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
end
return 1`);

/** Global index: creation order plus expiry order, trimming up to 100 expired ids on each write. KEYS: created, expiring. ARGV: createdAt, id, expiresAt ('' = never), now. */
export const GLOBAL_ADD = new RedisScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2]) end
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 100)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return #gone`);

/** Sets fields only when the token still exists: a rename or touch never resurrects a revoked token. */
export const UPDATE_IF_EXISTS = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`);

/** Deletes a token, returning its owner (or false) so the indexes can be cleaned. */
export const DELETE_TOKEN = new RedisScript(`
local user = redis.call('HGET', KEYS[1], 'user')
redis.call('DEL', KEYS[1])
return user`);

/** Counts one failure in a fixed window. ARGV: window ms. */
export const COUNT_FAILURE = new RedisScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`);
