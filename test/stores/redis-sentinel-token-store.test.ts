import { randomBytes } from 'node:crypto';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { runTokenStoreContract } from '../../lib/testing/index.js';
import { startRedisSentinel } from '../support/redis-sentinel.js';

runTokenStoreContract('RedisTokenStore through Redis Sentinel', async () => {
  const sentinel = await startRedisSentinel();
  const clients = [sentinel.connect(), sentinel.connect()];
  await Promise.all(clients.map((redis) => new Promise((resolve) => redis.once('ready', resolve))));
  const keyPrefix = `test-${randomBytes(4).toString('hex')}`;
  return {
    store: new RedisTokenStore({ redis: clients[0]!, keyPrefix }),
    peer: new RedisTokenStore({ redis: clients[1]!, keyPrefix }),
    async cleanup() {
      for (const redis of clients) redis.disconnect();
      await sentinel.stop();
    },
  };
});
