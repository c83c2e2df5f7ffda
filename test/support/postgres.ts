import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL the suites share (trust auth); tests work in schemas of their own. */
export const SHARED_POSTGRES_URL = process.env['PG_TEST_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A small pool that fails fast and never crashes the process when the server goes away. */
export function testPool(url = SHARED_POSTGRES_URL, options: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 2_000, ...options });
  pool.on('error', () => {});
  return pool;
}

/** A fresh schema name, unique to this run. */
export const freshSchema = (tag = 't') => `${tag}_${randomBytes(5).toString('hex')}`;

/** Drops a schema and everything in it. */
export async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}
