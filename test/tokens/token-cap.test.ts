import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import type { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { migrateSqlite } from '../../lib/stores/sqlite-schema.js';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { makeRecord } from '../../lib/testing/index.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { createInGroup, TokenService, type TokenServiceOptions } from '../../lib/tokens/service.js';
import { countCalls } from '../support/count-calls.js';
import { dropSchema, freshSchema, testPool } from '../support/postgres.js';
import { openRedisStore } from '../support/redis-store.js';
import { tempDir } from '../support/temp-dir.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Two stores on one backend, as two proxy instances would open it. */
interface Backend {
  one: TokenStore;
  two: TokenStore;
}

const backends: Record<string, () => Promise<Backend>> = {
  memory: async () => {
    const store = new MemoryTokenStore();
    cleanups.push(() => store.close());
    return { one: store, two: store };
  },
  SQLite: async () => {
    const { dir, remove } = tempDir('cap');
    const one = new SqliteTokenStore({ path: `${dir}/tokens.db`, synchronous: 'normal' });
    const two = new SqliteTokenStore({ path: `${dir}/tokens.db`, synchronous: 'normal' });
    cleanups.push(
      remove,
      () => two.close(),
      () => one.close(),
    );
    return { one, two };
  },
  PostgreSQL: async () => {
    const schema = freshSchema('cap');
    const pools = [testPool(), testPool()];
    const [one, two] = pools.map((pool) => new PostgresTokenStore({ pool, schema }));
    await one!.ensureSchema();
    cleanups.push(async () => {
      await dropSchema(pools[0]!, schema);
      for (const pool of pools) await pool.end();
    });
    return { one: one!, two: two! };
  },
  'Redis (two instances)': async () => {
    const { store, peer, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    cleanups.push(cleanup);
    return { one: store, two: peer };
  },
};

const services = (backend: Backend, options: Partial<TokenServiceOptions> = {}) =>
  [backend.one, backend.two].map(
    (store) => new TokenService({ store, hasher: sha256Hasher({ pepper: 'cap-test' }), ...options }),
  ) as [TokenService, TokenService];

/** The outcomes of calls made all at once, alternating between the two instances. */
async function atOnce<T>(count: number, call: (i: number) => Promise<T>) {
  const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => call(i)));
  const made = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as { code?: string }] : []));
  return { made, refused };
}

for (const [kind, open] of Object.entries(backends)) {
  describe(`the per-user cap on ${kind}`, () => {
    it('makes exactly 5 of 40 tokens created at once under a cap of 5', async () => {
      const tokens = services(await open(), { maxTokensPerUser: 5 });
      const { made, refused } = await atOnce(40, (i) =>
        tokens[i % 2]!.create({ user: 'Kate', name: `t${i}`, scope: 'read' }),
      );
      expect(made).toHaveLength(5);
      expect(new Set(refused.map((e) => e.code))).toEqual(new Set(['TOKEN_LIMIT_REACHED']));
      expect(await tokens[0].list('kate')).toHaveLength(5);
    });

    it('counts rotations that keep the old token alive: 20 rotations under a cap of 2 leave 2 tokens', async () => {
      const tokens = services(await open(), { maxTokensPerUser: 2 });
      let current = await tokens[0].create({ user: 'rotor', name: 'ci', scope: 'read' });
      let rotated = 0;
      for (let i = 0; i < 20; i++) {
        try {
          current = await tokens[i % 2]!.rotate(current.info.id, { graceMs: 3_600_000 });
          rotated++;
        } catch (err) {
          expect(err).toMatchObject({ code: 'TOKEN_LIMIT_REACHED' });
        }
      }
      expect(rotated).toBe(1);
      expect(await tokens[0].list('rotor')).toHaveLength(2);
      // Concurrent rotations with a grace period are bounded the same way.
      const fresh = services(await open(), { maxTokensPerUser: 2 });
      const first = await fresh[0].create({ user: 'racer', name: 'ci', scope: 'read' });
      await atOnce(20, (i) => fresh[i % 2]!.rotate(first.info.id, { graceMs: 3_600_000 }));
      expect(await fresh[0].list('racer')).toHaveLength(2);
    });

    it('turns 20 rotations of one token without grace, made at once, into one live token', async () => {
      const tokens = services(await open(), { maxTokensPerUser: 2 });
      const first = await tokens[0].create({ user: 'swapper', name: 'ci', scope: 'read' });
      await tokens[0].create({ user: 'swapper', name: 'other', scope: 'read' });
      const { made } = await atOnce(20, (i) => tokens[i % 2]!.rotate(first.info.id, { graceMs: 0 }));
      expect(made.length).toBeGreaterThanOrEqual(1);
      const live = await tokens[0].list('swapper');
      expect(live).toHaveLength(2);
      expect(live.map((t) => t.id)).not.toContain(first.info.id);
    });

    it('gives the count back when a token is revoked', async () => {
      const tokens = services(await open(), { maxTokensPerUser: 1 });
      const first = await tokens[0].create({ user: 'leaver', name: 'a', scope: 'read' });
      await expect(tokens[1].create({ user: 'leaver', name: 'b', scope: 'read' })).rejects.toMatchObject({
        code: 'TOKEN_LIMIT_REACHED',
      });
      await tokens[1].revoke(first.info.id);
      await tokens[0].create({ user: 'leaver', name: 'c', scope: 'read' });
    });

    it('bounds a counting group of its own (federation) without touching the owner’s cap', async () => {
      const tokens = services(await open(), { maxTokensPerUser: 1 });
      const rule = { group: 'federation:deploys', max: 3 };
      const { made, refused } = await atOnce(12, (i) =>
        createInGroup(tokens[i % 2]!, { user: 'ci-bot', name: `job ${i}`, scope: 'read' }, rule),
      );
      expect(made).toHaveLength(3);
      expect(refused.every((e) => e.code === 'TOKEN_LIMIT_REACHED')).toBe(true);
      await tokens[0].create({ user: 'ci-bot', name: 'own', scope: 'read' });
      await tokens[1].revoke(made[0]!.info.id);
      await createInGroup(tokens[0], { user: 'ci-bot', name: 'again', scope: 'read' }, rule);
    });

    it('creates without listing the owner’s tokens', async () => {
      const backend = await open();
      const counted = countCalls(backend.one);
      const tokens = new TokenService({ store: counted.target, hasher: sha256Hasher(), maxTokensPerUser: 3 });
      for (let i = 0; i < 3; i++) await tokens.create({ user: 'lister', name: `t${i}`, scope: 'read' });
      await expect(tokens.create({ user: 'lister', name: 'more', scope: 'read' })).rejects.toMatchObject({
        code: 'TOKEN_LIMIT_REACHED',
      });
      expect(counted.count('listByUser')).toBe(0);
      expect(counted.count('search')).toBe(0);
    });
  });
}

describe('createInGroup', () => {
  it('refuses the owners’ groups and malformed limits', async () => {
    const tokens = new TokenService({ store: new MemoryTokenStore(), hasher: sha256Hasher() });
    const input = { user: 'a', name: 'x', scope: 'read' as const };
    expect(() => createInGroup(tokens, input, { group: 'user:b', max: 5 })).toThrow(/limit.group/);
    expect(() => createInGroup(tokens, input, { group: '', max: 5 })).toThrow(/limit.group/);
    expect(() => createInGroup(tokens, input, { group: 'x\u0000', max: 5 })).toThrow(/limit.group/);
    expect(() => createInGroup(tokens, input, { group: 'federation:x', max: 0 })).toThrow(/limit.max/);
  });
});

describe('tokens written before counting groups (0.2.0)', () => {
  const hasher = sha256Hasher();
  const alive = () => makeRecord({ user: 'Old', expiresAt: Date.now() + 3_600_000 });

  it('are counted after an SQLite upgrade', async () => {
    const { dir, remove } = tempDir('cap-upgrade');
    cleanups.push(remove);
    const path = `${dir}/tokens.db`;
    const db = new Database(path);
    migrateSqlite(db, 'bbt_', path, 2);
    const insert = db.prepare(
      `INSERT INTO bbt_tokens (id, user_name, user_key, name, name_key, scope, hash, created_at, created_by, expires_at)
       VALUES (?, ?, ?, 'n', 'n', 'read', ?, ?, 'admin', ?)`,
    );
    for (const r of [alive(), alive(), makeRecord({ user: 'old', expiresAt: Date.now() - 1_000 })])
      insert.run(r.id, r.user, r.user.toLowerCase(), r.hash, r.createdAt, r.expiresAt);
    db.close();
    const store = new SqliteTokenStore({ path });
    cleanups.push(() => store.close());
    const tokens = new TokenService({ store, hasher, maxTokensPerUser: 3 });
    await tokens.create({ user: 'old', name: 'third', scope: 'read' });
    await expect(tokens.create({ user: 'OLD', name: 'fourth', scope: 'read' })).rejects.toMatchObject({
      code: 'TOKEN_LIMIT_REACHED',
    });
  });

  it('are counted after a PostgreSQL upgrade', async () => {
    const pool = testPool();
    const schema = freshSchema('capup');
    cleanups.push(async () => {
      await dropSchema(pool, schema);
      await pool.end();
    });
    // The tables as 0.2.0 made them (schema version 1), with its rows.
    const sql = PostgresTokenStore.schemaSql({ schema });
    const v1 = sql.slice(0, sql.indexOf('ALTER TABLE')).concat(
      `CREATE TABLE "${schema}"."bbt_schema_version" (version integer NOT NULL);
       INSERT INTO "${schema}"."bbt_schema_version" VALUES (1);`,
    );
    await pool.query(v1);
    for (const r of [alive(), alive(), makeRecord({ user: 'old', expiresAt: Date.now() - 1_000 })])
      await pool.query(
        `INSERT INTO "${schema}".bbt_tokens (id, user_name, user_key, name, name_key, scope, hash, created_at, created_by, expires_at)
         VALUES ($1, $2, $3, 'n', 'n', 'read', $4, $5, 'admin', $6)`,
        [r.id, r.user, r.user.toLowerCase(), r.hash, r.createdAt, r.expiresAt],
      );
    const tokens = new TokenService({
      store: new PostgresTokenStore({ pool, schema }),
      hasher,
      maxTokensPerUser: 3,
    });
    await tokens.create({ user: 'old', name: 'third', scope: 'read' });
    await expect(tokens.create({ user: 'old', name: 'fourth', scope: 'read' })).rejects.toMatchObject({
      code: 'TOKEN_LIMIT_REACHED',
    });
  });

  it('are counted in Redis the first time the owner’s group is used', async () => {
    const { store, redis, keyPrefix, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    cleanups.push(cleanup);
    // What 0.2.0 wrote: the token hash (no group field) and the user index.
    for (const r of [alive(), alive()]) {
      await redis.hset(`${keyPrefix}:t:{${r.id}}`, {
        user: r.user,
        name: r.name,
        scope: r.scope,
        hash: r.hash,
        createdAt: String(r.createdAt),
        createdBy: r.createdBy,
        expiresAt: String(r.expiresAt),
      });
      await redis.zadd(`${keyPrefix}:u:{${Buffer.from('old').toString('base64url')}}`, r.createdAt, r.id);
    }
    const tokens = new TokenService({ store: store as RedisTokenStore, hasher, maxTokensPerUser: 3 });
    await tokens.create({ user: 'old', name: 'third', scope: 'read' });
    await expect(tokens.create({ user: 'old', name: 'fourth', scope: 'read' })).rejects.toMatchObject({
      code: 'TOKEN_LIMIT_REACHED',
    });
  });
});
