import { randomBytes } from 'node:crypto';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { startRedisCluster } from '../support/redis-cluster.js';
import { runTokenStoreContract } from './contract.js';

runTokenStoreContract('RedisTokenStore on a three-master Redis Cluster', async () => {
  const cluster = await startRedisCluster(3);
  const redis = cluster.connect();
  const store = new RedisTokenStore({ redis, keyPrefix: `test-${randomBytes(4).toString('hex')}` });
  return {
    store,
    async cleanup() {
      redis.disconnect();
      await cluster.stop();
    },
  };
});
