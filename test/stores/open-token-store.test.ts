import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { openTokenStore, redactUrl } from '../../lib/stores/open-token-store.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { makeRecord } from '../../lib/testing/index.js';
import { dropSchema, freshSchema, SHARED_POSTGRES_URL, testPool } from '../support/postgres.js';
import { startRedisCluster } from '../support/redis-cluster.js';
import { startRedisSentinel } from '../support/redis-sentinel.js';
import { startRedisServer } from '../support/redis-server.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('open');
afterAll(() => {
  temp.remove();
  rmSync(join('.tmp', 'open-test'), { recursive: true, force: true });
});

/** A record written through one store is read back through it. */
async function roundTrip(store: TokenStore): Promise<void> {
  const record = makeRecord();
  await store.put(record);
  expect(await store.get(record.id)).toEqual(record);
}

/** Everything an error shows when printed or logged, however deep. */
const everything = (err: unknown) => `${String(err)}\n${inspect(err, { depth: 10, showHidden: true })}`;

async function failure(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

describe('openTokenStore', () => {
  it('memory: opens a MemoryTokenStore', async () => {
    const opened = await openTokenStore('memory:');
    expect(opened.store).toBeInstanceOf(MemoryTokenStore);
    await roundTrip(opened.store);
    await opened.close();
  });

  it('sqlite: opens a file by relative or absolute path, creating its directory, and keeps tokens across reopening', async () => {
    const file = join(temp.dir, 'nested', 'dir', 'tokens.db');
    const record = makeRecord();
    const first = await openTokenStore(`sqlite:${file}`);
    expect(first.store).toBeInstanceOf(SqliteTokenStore);
    await first.store.put(record);
    await first.close();
    const again = await openTokenStore(`sqlite://${file}`);
    expect(await again.store.get(record.id)).toEqual(record);
    await again.close();
    const relative = await openTokenStore(`sqlite:./${join('.tmp', 'open-test', `${record.id}.db`)}`);
    await roundTrip(relative.store);
    await relative.close();
  });

  it('redis:// opens a RedisTokenStore on a fail-fast client, with the key prefix from the URL', async () => {
    const opened = await openTokenStore(`${inject('redisUrl')}?keyPrefix=open-test`);
    expect(opened.store).toBeInstanceOf(RedisTokenStore);
    await roundTrip(opened.store);
    await opened.close();
  });

  it('takes a Redis password from the URL or the environment, and never shows it in an error', async () => {
    const server = await startRedisServer();
    const setup = new Redis(server.url);
    await setup.config('SET', 'requirepass', 's3cret-pass');
    setup.disconnect();
    try {
      const fromUrl = await openTokenStore(`redis://:s3cret-pass@127.0.0.1:${server.port}`);
      await roundTrip(fromUrl.store);
      await fromUrl.close();
      const fromEnv = await openTokenStore(`redis://127.0.0.1:${server.port}`, {
        env: { REDIS_PASSWORD: 's3cret-pass' },
      });
      await roundTrip(fromEnv.store);
      await fromEnv.close();
      const logged: Error[] = [];
      const err = await failure(
        openTokenStore(`redis://:wrong-pass-xyz@127.0.0.1:${server.port}`, {
          connectTimeoutMs: 1_500,
          onError: (e) => logged.push(e),
        }),
      );
      expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE' });
      expect(String(err)).toContain(':***@');
      for (const shown of [err, ...logged]) expect(everything(shown)).not.toContain('wrong-pass-xyz');
    } finally {
      await server.stop();
    }
  });

  it('redis+sentinel:// finds the master through Sentinel', async () => {
    const sentinel = await startRedisSentinel();
    try {
      const opened = await openTokenStore(`redis+sentinel://127.0.0.1:${sentinel.sentinelPort}/mymaster`);
      await roundTrip(opened.store);
      await opened.close();
    } finally {
      await sentinel.stop();
    }
  });

  it('redis+cluster:// connects to a Redis Cluster from a list of nodes', async () => {
    const cluster = await startRedisCluster(3);
    try {
      const nodes = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
      const opened = await openTokenStore(`redis+cluster://${nodes}?keyPrefix=open-cluster`);
      await roundTrip(opened.store);
      await opened.close();
    } finally {
      await cluster.stop();
    }
  });

  it('postgres:// opens a PostgresTokenStore with its tables ready, in the schema from the URL', async () => {
    const schema = freshSchema('open');
    const opened = await openTokenStore(`${SHARED_POSTGRES_URL}?schema=${schema}&tablePrefix=x_`);
    expect(opened.store).toBeInstanceOf(PostgresTokenStore);
    await roundTrip(opened.store);
    await opened.close();
    const pool = testPool();
    const { rows } = await pool.query(
      'SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1',
      [schema],
    );
    expect(rows[0]!.n).toBe(6); // tokens, failures, claims, groups, values, schema_version
    await dropSchema(pool, schema);
    await pool.end();
  });

  it('never shows a PostgreSQL password in an error', async () => {
    const err = await failure(
      openTokenStore('postgresql://app:hunter2-pg@127.0.0.1:1/tokens', { connectTimeoutMs: 2_000 }),
    );
    expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(String(err)).toContain('app:***@127.0.0.1:1');
    expect(everything(err)).not.toContain('hunter2-pg');
  });

  it('refuses an unknown scheme, listing the ones it knows, without echoing the password', async () => {
    const err = await failure(openTokenStore('mysql://root:topsecret@db/tokens'));
    expect(err).toBeInstanceOf(TypeError);
    expect(String(err)).toMatch(/mysql:\/\/root:\*\*\*@db\/tokens.*sqlite:<path>.*postgres:\/\//);
    expect(everything(err)).not.toContain('topsecret');
    await expect(openTokenStore('')).rejects.toThrow(TypeError);
    await expect(openTokenStore('sqlite:')).rejects.toThrow(/file path/);
    await expect(openTokenStore('redis+sentinel://127.0.0.1:1')).rejects.toThrow(/names the master/);
  });

  it('redacts passwords in URLs', () => {
    expect(redactUrl('redis://:pw@h:1/0')).toBe('redis://:***@h:1/0');
    expect(redactUrl('postgres://u:p%40ss@h/db')).toBe('postgres://u:***@h/db');
    expect(redactUrl('redis://h:1')).toBe('redis://h:1');
  });
});
