import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { copyTokens } from '../../lib/stores/copy-tokens.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { makeRecord } from '../../lib/testing/index.js';
import { keyedSeal, sealOf } from '../../lib/tokens/seal.js';
import { dropSchema, freshSchema, testPool } from '../support/postgres.js';
import { openRedisStore } from '../support/redis-store.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('copy');
const pool = testPool();
const schema = freshSchema('copy');
afterAll(async () => {
  temp.remove();
  await dropSchema(pool, schema);
  await pool.end();
});

/**
 * Tokens made and used through a gate on `from` verify unchanged through a gate on `to` after
 * the copy: same info, restrictions, last use; revoked and expired ones stay gone.
 */
async function migrates(from: TokenStore, to: TokenStore): Promise<void> {
  const options = { pepper: 'the-same-pepper', throttle: false as const, cache: { maxEntries: 0 } };
  const before = createTokenGate({ store: from, ...options });
  const made = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      before.tokens.create({ user: `user${i % 4}`, name: `t${i}`, scope: 'read' }),
    ),
  );
  // Restrictions and an upstream blob, written as the library writes them (sealed with the pepper).
  const changes = {
    allowedIps: ['10.0.0.0/8'],
    requiredHeaders: { 'x-ci': '1' },
    resources: ['PROJ/repo'],
    upstream: 'sealed',
  };
  const first = (await from.get(made[0]!.info.id))!;
  const seal = sealOf({ ...first, ...changes }, keyedSeal(options.pepper));
  await from.update(made[0]!.info.id, { ...changes, seal });
  await from.touch(made[1]!.info.id, 1_700_000_000_000, '203.0.113.5');
  await before.tokens.revoke(made[2]!.info.id);
  const expiring = makeRecord({ expiresAt: Date.now() + 50 });
  await from.put(expiring);
  await new Promise((resolve) => setTimeout(resolve, 100));

  const progress: number[] = [];
  const result = await copyTokens(from, to, { pageSize: 7, onProgress: (p) => progress.push(p.copied) });
  expect(result).toEqual({ copied: 29, skipped: 0 });
  expect(progress.at(-1)).toBe(29);

  const after = createTokenGate({ store: to, ...options });
  for (const [i, { token, info }] of made.entries()) {
    const verified = await after.tokens.verify(token);
    if (i === 2) expect(verified).toBeNull();
    else expect(verified).toEqual(await before.tokens.get(info.id));
  }
  expect(await to.get(made[0]!.info.id)).toEqual(await from.get(made[0]!.info.id));
  expect(await to.get(expiring.id)).toBeNull();

  // A catch-up copy keeps what changed on the new store since, and adds what is new on the old one.
  await to.update(made[3]!.info.id, { name: 'renamed on the new store' });
  const late = await before.tokens.create({ user: 'late', name: 'made during the switch', scope: 'write' });
  expect(await copyTokens(from, to, { overwrite: false })).toEqual({ copied: 1, skipped: 29 });
  expect((await to.get(made[3]!.info.id))?.name).toBe('renamed on the new store');
  expect(await after.tokens.verify(late.token)).not.toBeNull();
  await before.close();
  await after.close();
}

describe('copyTokens', () => {
  it('moves every token from Redis to SQLite without its owner noticing', async () => {
    const redis = await openRedisStore(new Redis(inject('redisUrl')));
    const sqlite = new SqliteTokenStore({ path: join(temp.dir, 'target.db') });
    await migrates(redis.store, sqlite);
    await sqlite.close();
    await redis.cleanup();
  });

  it('moves every token from SQLite to PostgreSQL', async () => {
    const sqlite = new SqliteTokenStore({ path: join(temp.dir, 'source.db') });
    const postgres = new PostgresTokenStore({ pool, schema });
    await migrates(sqlite, postgres);
    await sqlite.close();
    await postgres.close();
  });

  it('refuses what is not a store, or the same store twice', async () => {
    const store = new MemoryTokenStore();
    await expect(copyTokens(store, store)).rejects.toThrow(/`to` must be another store/);
    await expect(copyTokens({} as TokenStore, store)).rejects.toThrow(/`from` must be a TokenStore/);
    await expect(copyTokens(store, new MemoryTokenStore(), { pageSize: 0 })).rejects.toThrow(/`pageSize`/);
  });
});
