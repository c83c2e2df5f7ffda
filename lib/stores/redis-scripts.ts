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
 * Writes the token hash and its lifetime in one step; returns the counting group of the record
 * it replaced ('' when none). ARGV: keepUntil (expiry plus the retention; '' = never), field, value, …
 */
export const PUT_TOKEN = new RedisScript(`
local before = redis.call('HGET', KEYS[1], 'group') or ''
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return before`);

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
 * resurrects: a missing or expired token is left alone. Returns { owner, counting group ('' =
 * the owner's) }, or false.
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
return { user, redis.call('HGET', KEYS[1], 'group') or '' }`);

/**
 * Deletes a token, returning { owner, 1 if it was live, counting group ('' = the owner's) } (or
 * false) so the indexes and the group can be cleaned. ARGV: now.
 */
export const DELETE_TOKEN = new RedisScript(`
local user = redis.call('HGET', KEYS[1], 'user')
if not user then return false end
local expires = redis.call('HGET', KEYS[1], 'expiresAt')
local live = 1
if expires and expires ~= '' and tonumber(expires) <= tonumber(ARGV[1]) then live = 0 end
local group = redis.call('HGET', KEYS[1], 'group') or ''
redis.call('DEL', KEYS[1])
return { user, live, group }`);

/** Counts one failure in a fixed window. ARGV: window ms. */
export const COUNT_FAILURE = new RedisScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`);

/** Claims a key once for a while: 1 for the first caller, 0 until the claim lapses. ARGV: ttl ms. */
export const CLAIM = new RedisScript(`
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX') then return 1 end
return 0`);

/** Keeps a value for a while (`putValue`). ARGV: value, ttl ms. */
export const PUT_VALUE = new RedisScript(`
return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])`);

/** Reads and deletes a value in one step (`takeValue`; GETDEL needs Redis 6.2, this any version). */
export const TAKE_VALUE = new RedisScript(`
local value = redis.call('GET', KEYS[1])
if value then redis.call('DEL', KEYS[1]) end
return value`);

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

/**
 * Counts a token into a counting group (a zset of ids scored by expiry, '+inf' = never): 1 when
 * counted, 0 when the group already holds `max` live tokens, -1 when the group key does not
 * exist yet and the caller asked to be told (it then counts the group's older tokens in first).
 * Expired members are dropped only when the group looks full, so a create is O(log n). The key
 * lives as long as its longest-lived member. ARGV: id, expiresAt ('' = never), max ('' = no
 * limit), now, tell-if-missing ('1' or '').
 */
export const GROUP_RESERVE = new RedisScript(`
local existed = redis.call('EXISTS', KEYS[1])
if existed == 0 and ARGV[5] == '1' then return -1 end
if ARGV[3] ~= '' then
  local max = tonumber(ARGV[3])
  local held = function()
    local n = redis.call('ZCARD', KEYS[1])
    if redis.call('ZSCORE', KEYS[1], ARGV[1]) then n = n - 1 end
    return n
  end
  if held() >= max then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
    if held() >= max then return 0 end
  end
end
if ARGV[2] == '' then
  redis.call('ZADD', KEYS[1], '+inf', ARGV[1])
  redis.call('PERSIST', KEYS[1])
else
  local ttl = redis.call('PTTL', KEYS[1])
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  local wanted = tonumber(ARGV[2]) - tonumber(ARGV[4])
  if (existed == 0 or ttl >= 0) and wanted > ttl then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
end
return 1`);

/** Counts older tokens (written before counting groups existed) into a group. ARGV: id, score, id, score, … */
export const GROUP_SEED = new RedisScript(`
for i = 1, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i]) end
redis.call('PERSIST', KEYS[1])
return #ARGV / 2`);

/** After a token's expiry moved: its count lasts until the new expiry. ARGV: id, expiresAt ('' = never), now. */
export const GROUP_MOVE = new RedisScript(`
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if ARGV[2] == '' then
  redis.call('ZADD', KEYS[1], '+inf', ARGV[1])
  redis.call('PERSIST', KEYS[1])
else
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl >= 0 and tonumber(ARGV[2]) - tonumber(ARGV[3]) > ttl then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
end
return 1`);
