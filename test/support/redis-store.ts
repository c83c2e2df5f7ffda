import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';

/** A store under a random prefix, and a cleanup that removes exactly that prefix's keys. */
export async function openRedisStore(redis: Redis) {
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  const keyPrefix = `test-${randomBytes(6).toString('hex')}`;
  const store = new RedisTokenStore({ redis, keyPrefix });
  return {
    store,
    redis,
    keyPrefix,
    async cleanup() {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}:*`, 'COUNT', 500);
        if (keys.length > 0) await Promise.all(keys.map((k) => redis.del(k)));
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}
