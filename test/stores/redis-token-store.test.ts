import { Cluster, Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import type { RedisClientLike } from '../../lib/stores/redis-client.js';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { EXPIRED_RETENTION_MS } from '../../lib/stores/token-store.js';
import { expectStoreError, makeRecord, runTokenStoreContract } from '../../lib/testing/index.js';
import { openRedisStore } from '../support/redis-store.js';

runTokenStoreContract('RedisTokenStore on a single Redis', () =>
  openRedisStore(new Redis(inject('redisUrl'))),
);

const userKey = (prefix: string, user: string) =>
  `${prefix}:u:{${Buffer.from(user.toLowerCase()).toString('base64url')}}`;

describe('RedisTokenStore', () => {
  it('keeps the token key until expiry plus retention and the user index until expiry, checked in Redis', async () => {
    const { store, redis, keyPrefix, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    const expiresAt = Date.now() + 3_600_000;
    const record = makeRecord({ expiresAt });
    await store.put(record);
    expect(await redis.pexpiretime(`${keyPrefix}:t:{${record.id}}`)).toBe(expiresAt + EXPIRED_RETENTION_MS);
    expect(await redis.pexpiretime(userKey(keyPrefix, record.user))).toBe(expiresAt);
    expect(await redis.zscore(`${keyPrefix}:{all}:expiring`, record.id)).toBe(String(expiresAt));
    const forever = makeRecord({ user: record.user });
    await store.put(forever);
    expect(await redis.pttl(`${keyPrefix}:t:{${forever.id}}`)).toBe(-1);
    expect(await redis.pttl(userKey(keyPrefix, record.user))).toBe(-1);
    await cleanup();
  });

  it('moves the key lifetime, the expiry index and the user index TTL when update moves the expiry', async () => {
    const { store, redis, keyPrefix, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    const tokenKey = (id: string) => `${keyPrefix}:t:{${id}}`;
    const first = Date.now() + 60_000;
    const record = makeRecord({ expiresAt: first });
    await store.put(record);

    const later = Date.now() + 7_200_000;
    await store.update(record.id, { expiresAt: later });
    expect(await redis.pexpiretime(tokenKey(record.id))).toBe(later + EXPIRED_RETENTION_MS);
    expect(await redis.zscore(`${keyPrefix}:{all}:expiring`, record.id)).toBe(String(later));
    expect(await redis.pexpiretime(userKey(keyPrefix, record.user))).toBe(later);

    const sooner = Date.now() + 30_000;
    await store.update(record.id, { expiresAt: sooner });
    expect(await redis.pexpiretime(tokenKey(record.id))).toBe(sooner + EXPIRED_RETENTION_MS);
    expect(await redis.zscore(`${keyPrefix}:{all}:expiring`, record.id)).toBe(String(sooner));
    // The user index may outlive its tokens; it never dies before one of them.
    expect(await redis.pexpiretime(userKey(keyPrefix, record.user))).toBe(later);

    await store.update(record.id, { expiresAt: null });
    expect(await redis.pttl(tokenKey(record.id))).toBe(-1);
    expect(await redis.zscore(`${keyPrefix}:{all}:expiring`, record.id)).toBeNull();
    expect(await redis.pttl(userKey(keyPrefix, record.user))).toBe(-1);
    await cleanup();
  });

  it('stores the hash and never anything that looks like a token secret', async () => {
    const { store, redis, keyPrefix, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    const record = makeRecord();
    await store.put(record);
    const stored = await redis.hgetall(`${keyPrefix}:t:{${record.id}}`);
    expect(Object.keys(stored).sort()).toEqual(
      [
        'allowedIps',
        'createdAt',
        'createdBy',
        'expiresAt',
        'group',
        'hash',
        'lastUsedAt',
        'lastUsedIp',
        'name',
        'origin',
        'rateLimit',
        'requiredHeaders',
        'resources',
        'scope',
        'upstream',
        'user',
      ].sort(),
    );
    await cleanup();
  });

  it('fails with STORE_UNAVAILABLE, never "not found", when Redis is unreachable', async () => {
    const redis = new Redis({
      port: 1,
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    redis.on('error', () => {});
    const store = new RedisTokenStore({ redis });
    await expectStoreError(store.get(makeRecord().id));
    await expectStoreError(store.put(makeRecord()));
    await expectStoreError(store.listByUser('alice'));
    await expectStoreError(store.delete(makeRecord().id));
    await expectStoreError(store.claim('k', 1_000));
    await expectStoreError(store.expiringBetween(0, Date.now(), 10));
    redis.disconnect();
  });

  it('rejects options it cannot use, naming them', () => {
    expect(() => new RedisTokenStore({ redis: {} as Redis })).toThrow(/`redis`/);
    expect(() => new RedisTokenStore({ redis: new Redis({ lazyConnect: true }), keyPrefix: 'a{b}' })).toThrow(
      /`keyPrefix`/,
    );
    expect(
      () => new RedisTokenStore({ redis: new Redis({ lazyConnect: true }), prefix: 'x' } as never),
    ).toThrow(/Unknown option `prefix`/);
    expect(() => new RedisTokenStore({} as never)).toThrow(/`redis` is required/);
  });

  it('takes ioredis clients through a structural type, so its declarations never import ioredis', () => {
    // Compile-time: both ioredis classes fit the type the options declare.
    const redis = new Redis({ lazyConnect: true });
    const cluster = new Cluster([], { lazyConnect: true });
    const clients: RedisClientLike[] = [redis, cluster];
    expect(clients.every((client) => typeof client.evalsha === 'function')).toBe(true);
    redis.disconnect();
    cluster.disconnect();
  });
});
