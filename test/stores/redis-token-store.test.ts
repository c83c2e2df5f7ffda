import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { openRedisStore } from '../support/redis-store.js';
import { expectStoreError, makeRecord, runTokenStoreContract } from './contract.js';

runTokenStoreContract('RedisTokenStore on a single Redis', () =>
  openRedisStore(new Redis(inject('redisUrl'))),
);

describe('RedisTokenStore', () => {
  it('sets the token key to expire with the token (PEXPIREAT), checked in Redis itself', async () => {
    const { store, redis, keyPrefix, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    const expiresAt = Date.now() + 3_600_000;
    const record = makeRecord({ expiresAt });
    await store.put(record);
    expect(await redis.pexpiretime(`${keyPrefix}:t:{${record.id}}`)).toBe(expiresAt);
    const userTtl = await redis.pexpiretime(
      `${keyPrefix}:u:{${Buffer.from(record.user).toString('base64url')}}`,
    );
    expect(userTtl).toBe(expiresAt);
    const forever = makeRecord({ user: record.user });
    await store.put(forever);
    expect(await redis.pttl(`${keyPrefix}:t:{${forever.id}}`)).toBe(-1);
    expect(await redis.pttl(`${keyPrefix}:u:{${Buffer.from(record.user).toString('base64url')}}`)).toBe(-1);
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
        'hash',
        'lastUsedAt',
        'lastUsedIp',
        'name',
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
    redis.disconnect();
  });

  it('rejects options it cannot use, naming them', () => {
    expect(() => new RedisTokenStore({ redis: {} as Redis })).toThrow(/`redis`/);
    expect(() => new RedisTokenStore({ redis: new Redis({ lazyConnect: true }), keyPrefix: 'a{b}' })).toThrow(
      /`keyPrefix`/,
    );
  });
});
