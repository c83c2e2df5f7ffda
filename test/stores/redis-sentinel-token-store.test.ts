import { randomBytes } from 'node:crypto';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { startRedisSentinel } from '../support/redis-sentinel.js';
import { runTokenStoreContract } from './contract.js';

runTokenStoreContract('RedisTokenStore through Redis Sentinel', async () => {
  const sentinel = await startRedisSentinel();
  const redis = sentinel.connect();
  await new Promise((resolve) => redis.once('ready', resolve));
  const store = new RedisTokenStore({ redis, keyPrefix: `test-${randomBytes(4).toString('hex')}` });
  return {
    store,
    async cleanup() {
      redis.disconnect();
      await sentinel.stop();
    },
  };
});
