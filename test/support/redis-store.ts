import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';

/**
 * A store under a random prefix, a peer store on its own connection with the same prefix (as
 * another proxy would have), and a cleanup that removes exactly that prefix's keys.
 */
export async function openRedisStore(redis: Redis) {
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  const keyPrefix = `test-${randomBytes(6).toString('hex')}`;
  const store = new RedisTokenStore({ redis, keyPrefix });
  const peerClient = redis.duplicate();
  const peer = new RedisTokenStore({ redis: peerClient, keyPrefix });
  return {
    store,
    peer,
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
      peerClient.disconnect();
    },
  };
}

/** Two stores with one random prefix on two connections to one Redis Cluster. */
export function openClusterStores(connect: () => Cluster) {
  const keyPrefix = `test-${randomBytes(4).toString('hex')}`;
  const clients = [connect(), connect()];
  return {
    store: new RedisTokenStore({ redis: clients[0]!, keyPrefix }),
    peer: new RedisTokenStore({ redis: clients[1]!, keyPrefix }),
    disconnect: () => {
      for (const client of clients) client.disconnect();
    },
  };
}
