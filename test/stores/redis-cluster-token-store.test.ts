import { runTokenStoreContract } from '../../lib/testing/index.js';
import { startRedisCluster } from '../support/redis-cluster.js';
import { openClusterStores } from '../support/redis-store.js';

runTokenStoreContract('RedisTokenStore on a three-master Redis Cluster', async () => {
  const cluster = await startRedisCluster(3);
  const { store, peer, disconnect } = openClusterStores(() => cluster.connect());
  return {
    store,
    peer,
    async cleanup() {
      disconnect();
      await cluster.stop();
    },
  };
});
