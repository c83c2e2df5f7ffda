import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { copyTokens } from '../../lib/stores/copy-tokens.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { dropSchema, freshSchema, testPool } from '../support/postgres.js';
import { openRedisStore } from '../support/redis-store.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('switch');
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  temp.remove();
});

let files = 0;
const KINDS: Record<string, () => Promise<TokenStore>> = {
  memory: async () => new MemoryTokenStore(),
  SQLite: async () => {
    const store = new SqliteTokenStore({ path: join(temp.dir, `tokens-${files++}.db`) });
    cleanups.push(() => store.close());
    return store;
  },
  PostgreSQL: async () => {
    const schema = freshSchema('switch');
    const pool = testPool(); // its own: a gate holds one connection for LISTEN
    const store = new PostgresTokenStore({ pool, schema });
    cleanups.push(async () => {
      await store.close();
      await dropSchema(pool, schema);
      await pool.end();
    });
    return store;
  },
  Redis: async () => {
    const { store, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    cleanups.push(cleanup);
    return store;
  },
};
const PAIRS = Object.keys(KINDS).flatMap((from) =>
  Object.keys(KINDS)
    .filter((to) => to !== from)
    .map((to) => [from, to] as const),
);

function gateOn(store: TokenStore): TokenGate {
  const gate = createTokenGate({
    store,
    pepper: 'the-same-pepper',
    throttle: false,
    cache: { maxEntries: 0 },
  });
  cleanups.push(() => gate.close());
  return gate;
}

describe('the switch-over of docs/stores.md, step by step', () => {
  it.each(PAIRS)('from %s to %s never brings a revoked token back', async (fromKind, toKind) => {
    const old = await KINDS[fromKind]!();
    const next = await KINDS[toKind]!();
    const oldProxy = gateOn(old);
    const kept = await oldProxy.tokens.create({ user: 'alice', name: 'kept', scope: 'read' });
    const leaked = await oldProxy.tokens.create({ user: 'alice', name: 'leaked', scope: 'write' });
    const changed = await oldProxy.tokens.create({ user: 'bob', name: 'changed', scope: 'read' });
    const expiring = await oldProxy.tokens.create({ user: 'bob', name: 'expiring', scope: 'read' });

    // 1. Copy while the proxies still run on the old store.
    expect(await copyTokens(old, next)).toEqual({ copied: 4, skipped: 0 });

    // 2. Point the proxies at the new store. Someone revokes a leaked token there, another
    //    renames one, one expires there, and an old-store proxy still creates a token.
    const newProxy = gateOn(next);
    await newProxy.tokens.revoke(leaked.info.id);
    await newProxy.tokens.update(changed.info.id, { name: 'renamed' });
    await next.update(expiring.info.id, { expiresAt: Date.now() + 30 });
    await new Promise((resolve) => setTimeout(resolve, 60));
    const late = await oldProxy.tokens.create({
      user: 'carol',
      name: 'made during the rollout',
      scope: 'read',
    });

    // 3. Copy again with { overwrite: false }.
    expect(await copyTokens(old, next, { overwrite: false })).toEqual({ copied: 1, skipped: 4 });

    expect(await newProxy.tokens.verify(leaked.token)).toBeNull();
    expect(await next.get(leaked.info.id)).toBeNull();
    expect(await newProxy.tokens.verify(changed.token)).toMatchObject({ name: 'renamed' });
    expect(await newProxy.tokens.verify(expiring.token)).toBeNull();
    expect(await newProxy.tokens.verify(kept.token)).toMatchObject({ name: 'kept' });
    expect(await newProxy.tokens.verify(late.token)).toMatchObject({ user: 'carol' });

    // Running the first copy again by mistake does not bring it back either.
    await copyTokens(old, next);
    expect(await newProxy.tokens.verify(leaked.token)).toBeNull();
    expect(await newProxy.tokens.verify(kept.token)).not.toBeNull();
  });

  it('refuses a target that cannot remember what was copied into it', async () => {
    const target = new MemoryTokenStore();
    const { claim: _claim, ...rest } = Object.getOwnPropertyDescriptors(MemoryTokenStore.prototype);
    void _claim;
    const withoutClaim = Object.create(Object.getPrototypeOf(MemoryTokenStore.prototype), rest) as object;
    Object.setPrototypeOf(target, withoutClaim);
    await expect(copyTokens(new MemoryTokenStore(), target)).rejects.toThrow(/`to` must implement claim\(\)/);
  });
});
