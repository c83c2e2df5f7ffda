import { createHash } from 'node:crypto';
import type { RedisClientLike } from './redis-client.js';

/** A Lua script sent by SHA1 and loaded on demand. Every script here touches keys of one slot. */
export class RedisScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: RedisClientLike, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Writes the token hash and its lifetime in one step. ARGV: keepUntil (expiry plus the
 * retention; '' = never), field, value, …
 */
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

/** After a token's expiry moved: the user index lives at least as long as it. ARGV: expiresAt ('' = never), now. */
export const INDEX_EXTEND = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then
  redis.call('PERSIST', KEYS[1])
else
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl >= 0 and tonumber(ARGV[1]) - tonumber(ARGV[2]) > ttl then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
end
return 1`);

/**
 * Global index: creation order plus expiry order. Forgets up to 100 ids whose retention ended
 * on each write (expired ids within retention stay in the expiry index for expiringBetween).
 * KEYS: created, expiring. ARGV: createdAt, id, expiresAt ('' = never), forgetUpTo.
 */
export const GLOBAL_ADD = new RedisScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2]) else redis.call('ZREM', KEYS[2], ARGV[2]) end
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 100)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return #gone`);

/**
 * Changes fields of a live token, and its key's lifetime when the expiry moved. Never
 * resurrects: a missing or expired token is left alone. Returns the owner, or false.
 * ARGV: now, keepUntil ('-' = unchanged, '' = never, else ms), field, value, …
 */
export const UPDATE_LIVE = new RedisScript(`
local user = redis.call('HGET', KEYS[1], 'user')
if not user then return false end
local expires = redis.call('HGET', KEYS[1], 'expiresAt')
if expires and expires ~= '' and tonumber(expires) <= tonumber(ARGV[1]) then return false end
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
if ARGV[2] == '' then redis.call('PERSIST', KEYS[1])
elseif ARGV[2] ~= '-' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return user`);

/** Deletes a token, returning { owner, 1 if it was live } (or false) so the indexes can be cleaned. ARGV: now. */
export const DELETE_TOKEN = new RedisScript(`
local user = redis.call('HGET', KEYS[1], 'user')
if not user then return false end
local expires = redis.call('HGET', KEYS[1], 'expiresAt')
local live = 1
if expires and expires ~= '' and tonumber(expires) <= tonumber(ARGV[1]) then live = 0 end
redis.call('DEL', KEYS[1])
return { user, live }`);

/**
 * Adds to a counter in a fixed window that starts with the first addition; returns
 * { count, ms left in the window }. Failure counts and rate-limit leases. ARGV: by, window ms.
 */
export const WINDOW_ADD = new RedisScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  left = tonumber(ARGV[2])
end
return { n, left }`);

/** Claims a key once for a while: 1 for the first caller, 0 until the claim lapses. ARGV: ttl ms. */
export const CLAIM = new RedisScript(`
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX') then return 1 end
return 0`);

/** Removes ids from one index zset. ARGV: ids. */
export const INDEX_REMOVE = new RedisScript(`
return redis.call('ZREM', KEYS[1], unpack(ARGV))`);

/** Sets an id's score in the expiry index, or removes it ('' = never expires). ARGV: id, expiresAt. */
export const EXPIRY_INDEX_SET = new RedisScript(`
if ARGV[2] == '' then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])`);

/** Ids with expiry in (min, max], soonest first. ARGV: min (exclusive), max, offset, count. */
export const EXPIRY_RANGE = new RedisScript(`
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], ARGV[2], 'WITHSCORES', 'LIMIT', ARGV[3], ARGV[4])`);
