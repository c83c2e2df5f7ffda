/**
 * `node --import tsx bench/token-cap.ts`: what a create costs under the per-user cap when the
 * owner holds 1 token and when they hold 10,000 (BENCH_TOKENS), on memory, SQLite, PostgreSQL
 * (PG_BENCH_URL, default the local server, in a schema dropped afterwards) and Redis
 * (REDIS_URL, default the local server, under a random prefix removed afterwards). The cap is
 * counted in the store, so both columns should match.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { MemoryTokenStore } from '../lib/stores/memory-token-store.js';
import { PostgresTokenStore } from '../lib/stores/postgres-token-store.js';
import { RedisTokenStore } from '../lib/stores/redis-token-store.js';
import { SqliteTokenStore } from '../lib/stores/sqlite-token-store.js';
import type { TokenStore } from '../lib/stores/token-store.js';
import { generateToken } from '../lib/tokens/format.js';
import { sha256Hasher } from '../lib/tokens/hashers.js';
import { TokenService } from '../lib/tokens/service.js';

const HELD = Number(process.env['BENCH_TOKENS'] ?? 10_000);
const SAMPLES = 50;
const PG_URL = process.env['PG_BENCH_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** A stored token of `user` (what a create writes), without its secret. */
const record = (user: string) => ({
  id: generateToken('bbt').id,
  user,
  name: 'held',
  scope: 'read' as const,
  hash: `hmac-sha256$${randomBytes(32).toString('base64url')}`,
  createdAt: Date.now(),
  createdBy: user,
  expiresAt: null,
  lastUsedAt: null,
  lastUsedIp: null,
  allowedIps: null,
  requiredHeaders: null,
  resources: null,
  upstream: null,
});

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Median ms of one create for a user who holds `held` tokens. */
async function createCost(store: TokenStore, held: number): Promise<number> {
  const user = `bench-${randomBytes(4).toString('hex')}`;
  const tokens = new TokenService({ store, hasher: sha256Hasher(), maxTokensPerUser: 100_000 });
  for (let i = 0; i < held; i += 100)
    await Promise.all(Array.from({ length: Math.min(100, held - i) }, () => store.put(record(user))));
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    await tokens.create({ user, name: `t${i}`, scope: 'read' });
    times.push(performance.now() - started);
  }
  return median(times);
}

async function measure(name: string, open: () => Promise<{ store: TokenStore; close(): Promise<void> }>) {
  const { store, close } = await open();
  try {
    const one = await createCost(store, 1);
    const many = await createCost(store, HELD);
    console.log(`| ${name} | ${one.toFixed(3)} ms | ${many.toFixed(3)} ms |`);
  } finally {
    await close();
  }
}

console.log(`| store | create, owner holds 1 | create, owner holds ${HELD.toLocaleString('en-US')} |`);
console.log('| --- | ---: | ---: |');
await measure('memory', async () => {
  const store = new MemoryTokenStore();
  return { store, close: () => store.close() };
});
await measure('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'eat-cap-'));
  const store = new SqliteTokenStore({ path: join(dir, 'tokens.db') });
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
await measure('PostgreSQL', async () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const store = new PostgresTokenStore({ pool, schema });
  return {
    store,
    close: async () => {
      await store.close();
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    },
  };
});
await measure('Redis', async () => {
  const redis = new Redis(REDIS_URL);
  const keyPrefix = `bench-${randomBytes(4).toString('hex')}`;
  const store = new RedisTokenStore({ redis, keyPrefix });
  return {
    store,
    close: async () => {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys.map((k) => k));
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
});
