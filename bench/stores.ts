/**
 * `npm run bench:stores`: what each token store costs, through the built package (`dist/`).
 * - create and verify 10,000 tokens, 100 at a time (sha256 hasher, verified-token cache off),
 *   on memory, SQLite, Redis and PostgreSQL;
 * - verify latency (one at a time, cache off) with 100 and with 100,000 tokens stored, for
 *   SQLite and PostgreSQL.
 * Redis is a `redis-server` this bench starts; PostgreSQL is the one at PG_BENCH_URL (default
 * the local server, database `test`), in a schema the bench drops afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { TokenService as TokenServiceType, TokenStore } from '../lib/index.js';
import { startRedisServer } from '../test/support/redis-server.js';
import { library } from './load-library.js';

const {
  MemoryTokenStore,
  PostgresTokenStore,
  RedisTokenStore,
  SqliteTokenStore,
  TokenService,
  sha256Hasher,
} = library;

const COUNT = Number(process.env['BENCH_TOKENS'] ?? 10_000);
const CONCURRENCY = 100;
const LARGE = 100_000;
const PG_URL = process.env['PG_BENCH_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

const rows: string[][] = [];
const row = (...cells: string[]) => {
  rows.push(cells);
  console.error(`  ${cells.join(' | ')}`);
};
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const service = (store: TokenStore): TokenServiceType =>
  new TokenService({ store, hasher: sha256Hasher(), tokenPrefix: 'bbt', cache: { maxEntries: 0 } });

/** Runs `work(i)` for i < count with `concurrency` in flight; the elapsed ms. */
async function pooled(
  count: number,
  concurrency: number,
  work: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await work(next++);
    }),
  );
  return performance.now() - started;
}

async function createAndVerify(label: string, store: TokenStore): Promise<void> {
  const tokens = service(store);
  const made: string[] = new Array(COUNT);
  const createMs = await pooled(COUNT, CONCURRENCY, async (i) => {
    made[i] = (await tokens.create({ user: `user${i % 500}`, name: `token ${i}`, scope: 'read' })).token;
  });
  let valid = 0;
  const verifyMs = await pooled(COUNT, CONCURRENCY, async (i) => {
    if ((await tokens.verify(made[i]!)) !== null) valid++;
  });
  if (valid !== COUNT) throw new Error(`${label}: only ${valid} of ${COUNT} tokens verified`);
  row(
    label,
    `${fmt(createMs / 1000, 2)} s`,
    `${fmt(COUNT / (createMs / 1000))}/s`,
    `${fmt(verifyMs / 1000, 2)} s`,
    `${fmt(COUNT / (verifyMs / 1000))}/s`,
  );
}

/** Mean µs of one verify (cache off) over `n` calls, after a short warm-up. */
async function latency(tokens: TokenServiceType, token: string, n: number): Promise<number> {
  for (let i = 0; i < 50; i++) await tokens.verify(token);
  const started = performance.now();
  for (let i = 0; i < n; i++) await tokens.verify(token);
  return ((performance.now() - started) * 1000) / n;
}

const latencyRows: string[][] = [];

/**
 * Verify latency with 100 and with 100,000 other tokens stored beside the one verified,
 * measured alternately (small, large, small, …) so that a busy machine weighs on both alike.
 */
async function scale(
  label: string,
  open: (filler: number) => Promise<{ store: TokenStore; close(): Promise<void> }>,
) {
  const opened = [await open(100), await open(LARGE)];
  const measured = await Promise.all(
    opened.map(async ({ store }) => {
      const tokens = service(store);
      return {
        tokens,
        token: (await tokens.create({ user: 'alice', name: 'measured', scope: 'read' })).token,
      };
    }),
  );
  const results: number[][] = [[], []];
  for (let round = 0; round < 5; round++)
    for (const [i, { tokens, token }] of measured.entries())
      results[i]!.push(await latency(tokens, token, 500));
  for (const { close } of opened) await close();
  const [small, large] = results.map(median) as [number, number];
  latencyRows.push([label, `${fmt(small, 1)} µs`, `${fmt(large, 1)} µs`, fmt(large / small, 2)]);
  console.error(`  ${latencyRows.at(-1)!.join(' | ')}`);
}

/** Filler rows written straight into the store's table: only the measured token goes through `put`. */
const FILLER_SELECT = (series: string) => `
  SELECT 'f' || n, 'user' || (n % 5000), 'user' || (n % 5000), 'token ' || n, 'token ' || n, 'read',
         'hmac-sha256$filler', ${Date.now()} - n, 'bench', NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM ${series}`;
const COLUMNS =
  '(id, user_name, user_key, name, name_key, scope, hash, created_at, created_by, expires_at, last_used_at, last_used_ip, allowed_ips, required_headers, resources, upstream)';

function table(header: string[], body: string[][]): string {
  const widths = header.map((_, c) => Math.max(...[header, ...body].map((r) => r[c]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  const started = Date.now();
  console.error(
    `express-api-tokens store bench on ${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'eat-bench-'));
  const redisServer = await startRedisServer();
  const redis = new Redis(redisServer.url);
  const pool = new pg.Pool({ connectionString: PG_URL, max: 20 });
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  try {
    console.error(`Create and verify ${fmt(COUNT)} tokens, ${CONCURRENCY} at a time:`);
    const memory = new MemoryTokenStore();
    await createAndVerify('MemoryTokenStore', memory);
    await memory.close();
    const sqlite = new SqliteTokenStore({ path: join(dir, 'tokens.db') });
    await createAndVerify('SqliteTokenStore (synchronous FULL)', sqlite);
    await sqlite.close();
    const sqliteNormal = new SqliteTokenStore({ path: join(dir, 'normal.db'), synchronous: 'normal' });
    await createAndVerify('SqliteTokenStore (synchronous NORMAL)', sqliteNormal);
    await sqliteNormal.close();
    await createAndVerify('RedisTokenStore', new RedisTokenStore({ redis, keyPrefix: 'bench-stores' }));
    const postgres = new PostgresTokenStore({ pool, schema });
    await createAndVerify('PostgresTokenStore', postgres);
    await postgres.close();

    console.error(`Verify latency, one at a time, with 100 and ${fmt(LARGE)} tokens stored:`);
    await scale('SqliteTokenStore', async (filler) => {
      const path = join(dir, `scale-${filler}.db`);
      const store = new SqliteTokenStore({ path });
      const db = new Database(path);
      db.prepare(
        `INSERT INTO bbt_tokens ${COLUMNS} WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${filler}) ${FILLER_SELECT('s')}`,
      ).run();
      db.close();
      return { store, close: () => store.close() };
    });
    await scale('PostgresTokenStore', async (filler) => {
      const scaleSchema = `${schema}_${filler}`;
      const store = new PostgresTokenStore({ pool, schema: scaleSchema });
      await store.ensureSchema();
      await pool.query(
        `INSERT INTO "${scaleSchema}".bbt_tokens ${COLUMNS} ${FILLER_SELECT(`generate_series(1, ${filler}) AS n`)}`,
      );
      await pool.query(`ANALYZE "${scaleSchema}".bbt_tokens`);
      return {
        store,
        close: async () => {
          await store.close();
          await pool.query(`DROP SCHEMA "${scaleSchema}" CASCADE`);
        },
      };
    });
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await pool.end();
    redis.disconnect();
    await redisServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    table(['Store', `Create ${fmt(COUNT)}`, 'Creates/s', `Verify ${fmt(COUNT)}`, 'Verifies/s'], rows),
  );
  console.log();
  console.log(table(['Store', 'Verify, 100 tokens', `Verify, ${fmt(LARGE)} tokens`, 'Ratio'], latencyRows));
  console.log(
    `\n${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}; sha256 hasher, cache off, ` +
      `${CONCURRENCY} concurrent; total ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
}

await main();
