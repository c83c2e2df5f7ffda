import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_SCHEMA_VERSION } from '../../lib/stores/postgres-schema.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import { expectStoreError, makeRecord, runTokenStoreContract } from '../../lib/testing/index.js';
import { dropSchema, freshSchema, testPool } from '../support/postgres.js';

runTokenStoreContract('PostgresTokenStore (two pools, one schema)', async () => {
  const pools = [testPool(), testPool()];
  const schema = freshSchema();
  const store = new PostgresTokenStore({ pool: pools[0]!, schema });
  // The peer runs without prepared statements, so the contract covers both ways of querying.
  const peer = new PostgresTokenStore({ pool: pools[1]!, schema, preparedStatements: false });
  await store.ensureSchema();
  return {
    store,
    peer,
    async cleanup() {
      await store.close();
      await peer.close();
      await dropSchema(pools[0]!, schema);
      await Promise.all(pools.map((pool) => pool.end()));
    },
  };
});

describe('PostgresTokenStore', () => {
  let pool: pg.Pool;
  const schemas: string[] = [];
  const schemaFor = (tag: string) => {
    const schema = freshSchema(tag);
    schemas.push(schema);
    return schema;
  };
  beforeAll(() => {
    pool = testPool();
  });
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(pool, schema);
    await pool.end();
  });

  it('creates its tables on first use, in a schema and with a prefix of your choosing', async () => {
    const schema = schemaFor('Mixed_Case');
    const store = new PostgresTokenStore({ pool, schema, tablePrefix: 'Api_' });
    const record = makeRecord();
    await store.put(record);
    expect(await store.get(record.id)).toEqual(record);
    const { rows } = await pool.query(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
      [schema],
    );
    expect(rows.map((r) => r.table_name)).toEqual([
      'Api_claims',
      'Api_failures',
      'Api_groups',
      'Api_schema_version',
      'Api_tokens',
      'Api_values',
    ]);
    await store.close();
  });

  it('hands DBAs the SQL, and then runs on their tables without creating anything', async () => {
    const schema = schemaFor('dba');
    const sql = PostgresTokenStore.schemaSql({ schema });
    expect(sql).toContain(`CREATE TABLE "${schema}"."bbt_tokens"`);
    await pool.query(sql);
    const store = new PostgresTokenStore({ pool, schema, createSchema: false });
    const record = makeRecord();
    await store.put(record);
    expect(await store.get(record.id)).toEqual(record);
  });

  it('without createSchema, says how to create missing tables', async () => {
    const store = new PostgresTokenStore({ pool, schema: schemaFor('missing'), createSchema: false });
    await expect(store.get(makeRecord().id)).rejects.toThrow(/schema version 0.*schemaSql\(\)/);
  });

  it('refuses tables written by a newer release, naming both schema versions', async () => {
    const schema = schemaFor('newer');
    await new PostgresTokenStore({ pool, schema }).ensureSchema();
    await pool.query(`UPDATE "${schema}"."bbt_schema_version" SET version = 7`);
    const store = new PostgresTokenStore({ pool, schema });
    await expect(store.ensureSchema()).rejects.toThrow(
      new RegExp(`schema version 7.*schema version ${POSTGRES_SCHEMA_VERSION} at most`),
    );
    await expect(store.get(makeRecord().id)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('upgrades tables of schema version 1, keeping their tokens', async () => {
    const schema = schemaFor('upgrade');
    const first = new PostgresTokenStore({ pool, schema });
    const record = makeRecord();
    await first.put(record);
    // Back to what 0.2.0 wrote: none of the later columns and tables, version 1.
    for (const column of ['origin', 'rate_limit', 'seal', 'count_group'])
      await pool.query(`ALTER TABLE "${schema}"."bbt_tokens" DROP COLUMN ${column}`);
    await pool.query(`DROP TABLE "${schema}"."bbt_values", "${schema}"."bbt_groups"`);
    await pool.query(`UPDATE "${schema}"."bbt_schema_version" SET version = 1`);
    const store = new PostgresTokenStore({ pool, schema });
    expect(await store.get(record.id)).toEqual(record);
    await store.putValue('after-upgrade', 'kept', 60_000);
    expect(await store.takeValue('after-upgrade')).toBe('kept');
    const { rows } = await pool.query(`SELECT version FROM "${schema}"."bbt_schema_version"`);
    expect(rows).toEqual([{ version: POSTGRES_SCHEMA_VERSION }]);
  });

  it('creates the schema once when a fleet starts at the same moment', async () => {
    const schema = schemaFor('race');
    const stores = Array.from({ length: 6 }, () => new PostgresTokenStore({ pool, schema }));
    await Promise.all(stores.map((store) => store.ensureSchema()));
    const { rows } = await pool.query(`SELECT version FROM "${schema}"."bbt_schema_version"`);
    expect(rows).toEqual([{ version: POSTGRES_SCHEMA_VERSION }]);
  });

  it('has an index for every query of the token manager', async () => {
    const schema = schemaFor('plans');
    const store = new PostgresTokenStore({ pool, schema });
    await store.ensureSchema();
    const client = await pool.connect();
    try {
      // On a tiny table the planner prefers a scan; forbidding it shows which index serves the query.
      await client.query('SET enable_seqscan = off');
      const t = `"${schema}"."bbt_tokens"`;
      const live = '(expires_at IS NULL OR expires_at > 1)';
      const queries = {
        get: `SELECT * FROM ${t} WHERE id = 'x' AND ${live}`,
        listByUser: `SELECT * FROM ${t} WHERE user_key = 'u' AND ${live} ORDER BY created_at DESC, id DESC`,
        'search (newest first)': `SELECT * FROM ${t} WHERE ${live} ORDER BY created_at DESC, id DESC LIMIT 26`,
        'search (restricted)': `SELECT * FROM ${t} WHERE ${live} AND (allowed_ips IS NOT NULL OR required_headers IS NOT NULL OR resources IS NOT NULL) ORDER BY created_at DESC, id DESC LIMIT 26`,
        'search (lastUsedBefore)': `SELECT * FROM ${t} WHERE last_used_at < 5`,
        expiringBetween: `SELECT * FROM ${t} WHERE expires_at > 1 AND expires_at <= 2 ORDER BY expires_at, id LIMIT 10`,
        failures: `SELECT count FROM "${schema}"."bbt_failures" WHERE key = 'k' AND until > 1`,
        claims: `SELECT * FROM "${schema}"."bbt_claims" WHERE key = 'k'`,
        values: `SELECT value FROM "${schema}"."bbt_values" WHERE key = 'k' AND until > 1`,
      };
      for (const [name, sql] of Object.entries(queries)) {
        const { rows } = await client.query(`EXPLAIN ${sql}`);
        const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
        expect(`${name}: ${plan}`).toMatch(/Index (Only )?Scan|Bitmap Index Scan/);
        expect(`${name}: ${plan}`).not.toMatch(/Seq Scan/);
      }
    } finally {
      client.release(true);
    }
  });

  it('refuses schema and prefix names it cannot quote safely, naming the option', () => {
    expect(() => new PostgresTokenStore({ pool, schema: 'a"b' })).toThrow(/`schema`/);
    expect(() => new PostgresTokenStore({ pool, schema: 'x; DROP SCHEMA public' })).toThrow(/`schema`/);
    expect(() => new PostgresTokenStore({ pool, tablePrefix: 'p-' })).toThrow(/`tablePrefix`/);
    expect(() => new PostgresTokenStore({ pool, schema: 'a'.repeat(31) })).toThrow(/`schema`/);
    expect(() => new PostgresTokenStore({ pool: {} as pg.Pool })).toThrow(/`pool`/);
    expect(() => new PostgresTokenStore({ pool, shema: 'x' } as never)).toThrow(/did you mean `schema`/);
  });

  it('fails with STORE_UNAVAILABLE, never "not found", when PostgreSQL is unreachable', async () => {
    const dead = testPool('postgres://postgres@127.0.0.1:1/test', { connectionTimeoutMillis: 500 });
    const store = new PostgresTokenStore({ pool: dead, schema: 'never_created' });
    await expectStoreError(store.get(makeRecord().id));
    await expectStoreError(store.put(makeRecord()));
    await expectStoreError(store.delete(makeRecord().id));
    await expectStoreError(store.subscribe(() => {}));
    await dead.end();
  });

  it('listens again after its connection is killed, reporting "*" while it could miss revocations', async () => {
    const schema = schemaFor('relisten');
    const store = new PostgresTokenStore({ pool, schema });
    const other = new PostgresTokenStore({ pool: testPool(), schema });
    const seen: string[] = [];
    const stop = await store.subscribe((id) => seen.push(id));
    const killed = await pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`,
      [`LISTEN "${schema}.bbt_revoked"`],
    );
    expect(killed.rowCount).toBe(1);
    for (let i = 0; i < 100 && seen.filter((id) => id === '*').length < 2; i++) await sleep(20);
    expect(seen.filter((id) => id === '*').length).toBeGreaterThanOrEqual(2); // lost, then back
    const record = makeRecord();
    await other.put(record);
    await other.delete(record.id);
    for (let i = 0; i < 50 && !seen.includes(record.id); i++) await sleep(20);
    expect(seen).toContain(record.id);
    await stop();
    await store.close();
  });

  it('delivers the id of a token revoked through another pool within a second (LISTEN/NOTIFY)', async () => {
    const schema = schemaFor('notify');
    const listening = new PostgresTokenStore({ pool, schema });
    const otherPool = testPool();
    const revoking = new PostgresTokenStore({ pool: otherPool, schema });
    const seen: Array<{ id: string; at: number }> = [];
    const stop = await listening.subscribe((id) => seen.push({ id, at: Date.now() }));
    const record = makeRecord();
    await revoking.put(record);
    const started = Date.now();
    await revoking.delete(record.id);
    for (let i = 0; i < 100 && !seen.some((s) => s.id === record.id); i++) await sleep(10);
    const delivered = seen.find((s) => s.id === record.id);
    expect(delivered).toBeDefined();
    expect(delivered!.at - started).toBeLessThan(1_000);
    expect(seen.map((s) => s.id)).toEqual([record.id]);
    console.log(`PostgreSQL: a revocation reached the other store after ${delivered!.at - started} ms`);
    await stop();
    await otherPool.end();
  });

  it('close() stops listening and leaves the caller’s pool open', async () => {
    const store = new PostgresTokenStore({ pool, schema: schemaFor('close') });
    await store.subscribe(() => {});
    await store.close();
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});
