import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { type RedisClusterProcess, startRedisCluster } from '../support/redis-cluster.js';

describe('RedisTokenStore on a Redis Cluster that fails over', () => {
  let cluster: RedisClusterProcess;
  let redis: Cluster;
  let gate: TokenGate;

  beforeAll(async () => {
    cluster = await startRedisCluster(3, 1);
    redis = cluster.connect({ redisOptions: { commandTimeout: 1_000 }, clusterRetryStrategy: () => 200 });
    redis.on('error', () => {});
    gate = createTokenGate({
      store: new RedisTokenStore({ redis, keyPrefix: 'failover' }),
      cache: { maxEntries: 0 },
    });
  }, 60_000);

  afterAll(async () => {
    await gate?.close();
    redis?.disconnect();
    await cluster?.stop();
  });

  it('keeps verifying after a master dies and its replica is promoted, and no revoked token comes back', async () => {
    const live = await Promise.all(
      Array.from({ length: 30 }, (_, i) => gate.tokens.create({ user: `u${i}`, name: 'x', scope: 'read' })),
    );
    const revoked = await Promise.all(
      Array.from({ length: 30 }, (_, i) => gate.tokens.create({ user: `r${i}`, name: 'x', scope: 'read' })),
    );
    for (const { info } of revoked) await gate.tokens.revoke(info.id);
    await sleep(500); // let the replicas catch up (replication is asynchronous)

    await cluster.masters[0]!.stop();
    const started = Date.now();
    let verified = 0;
    while (Date.now() - started < 20_000) {
      const results = await Promise.allSettled(live.map(({ token }) => gate.tokens.verify(token)));
      verified = results.filter((r) => r.status === 'fulfilled' && r.value !== null).length;
      // A store error is a 503 (fail closed), never a null; a null would be a lost token.
      expect(results.filter((r) => r.status === 'fulfilled' && r.value === null)).toEqual([]);
      if (verified === live.length) break;
      await sleep(200);
    }
    expect(verified).toBe(live.length);
    console.log(`cluster failover: all tokens verified again after ${Date.now() - started} ms`);
    for (const { token } of revoked) expect(await gate.tokens.verify(token)).toBeNull();
  }, 60_000);
});
