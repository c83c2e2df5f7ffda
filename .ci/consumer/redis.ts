// The Redis store takes the user's own ioredis client, single node or Cluster, of either major.
import { createTokenGate, RedisTokenStore } from 'express-api-tokens';
import { Cluster, Redis } from 'ioredis';

const single = new RedisTokenStore({ redis: new Redis({ lazyConnect: true }), keyPrefix: 'ci' });
const cluster = new RedisTokenStore({
  redis: new Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true }),
});
export const gates = [createTokenGate({ store: single }), createTokenGate({ store: cluster })];
