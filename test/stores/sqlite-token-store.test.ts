import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { requireOptional } from '../../lib/internal/optional-module.js';
import { migrateSqlite, SQLITE_SCHEMA_VERSION } from '../../lib/stores/sqlite-schema.js';
import { assertSupportedBetterSqlite3, SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import { expectStoreError, makeRecord, runTokenStoreContract } from '../../lib/testing/index.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('sqlite');
afterAll(() => temp.remove());
let files = 0;
const freshFile = () => join(temp.dir, `tokens-${files++}.db`);

runTokenStoreContract('SqliteTokenStore (two connections to one file)', async () => {
  const path = freshFile();
  const store = new SqliteTokenStore({ path });
  const peer = new SqliteTokenStore({ path });
  return {
    store,
    peer,
    async cleanup() {
      await store.close();
      await peer.close();
    },
  };
});

describe('SqliteTokenStore', () => {
  it('opens the file in WAL mode with FULL sync, and keeps the caller’s database open on close', async () => {
    const database = new Database(freshFile());
    const store = new SqliteTokenStore({ database });
    expect(database.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(database.pragma('synchronous', { simple: true })).toBe(2); // FULL
    const record = makeRecord();
    await store.put(record);
    // Counters, claims and touches skip the fsync, and FULL is back for the next token write.
    await store.countFailure('k', 1_000);
    await store.claim('c', 1_000);
    await store.touch(record.id, Date.now(), null);
    expect(database.pragma('synchronous', { simple: true })).toBe(2);
    await store.close();
    expect(database.open).toBe(true);
    expect(database.prepare('SELECT count(*) AS n FROM bbt_tokens').get()).toEqual({ n: 1 });
    database.close();
  });

  it('runs with NORMAL sync when asked to', async () => {
    const database = new Database(freshFile());
    const store = new SqliteTokenStore({ database, synchronous: 'normal' });
    await store.countFailure('k', 1_000);
    expect(database.pragma('synchronous', { simple: true })).toBe(1);
    await store.close();
    database.close();
  });

  it('answers every query of the token manager from an index, never a full scan', () => {
    const path = freshFile();
    const store = new SqliteTokenStore({ path });
    const db = new Database(path, { readonly: true });
    const plan = (sql: string) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>)
        .map((r) => r.detail)
        .join('; ');
    const live = '(expires_at IS NULL OR expires_at > 1)';
    const queries = {
      get: `SELECT * FROM bbt_tokens WHERE id = 'x' AND ${live}`,
      listByUser: `SELECT * FROM bbt_tokens WHERE user_key = 'u' AND ${live} ORDER BY created_at DESC, id DESC`,
      'search (newest first)': `SELECT * FROM bbt_tokens WHERE ${live} ORDER BY created_at DESC, id DESC LIMIT 26`,
      'search (restricted)': `SELECT * FROM bbt_tokens WHERE ${live} AND (allowed_ips IS NOT NULL OR required_headers IS NOT NULL OR resources IS NOT NULL) ORDER BY created_at DESC, id DESC LIMIT 26`,
      'search (expiresBefore)': `SELECT * FROM bbt_tokens WHERE ${live} AND (expires_at IS NOT NULL AND expires_at < 5) ORDER BY created_at DESC, id DESC LIMIT 26`,
      expiringBetween:
        'SELECT * FROM bbt_tokens WHERE expires_at > 1 AND expires_at <= 2 ORDER BY expires_at, id LIMIT 10',
      revocations: 'SELECT seq, id FROM bbt_revocations WHERE seq > 1 ORDER BY seq LIMIT 500',
      failures: "SELECT count FROM bbt_failures WHERE key = 'k' AND until > 1",
      claims: "SELECT * FROM bbt_claims WHERE key = 'k'",
    };
    for (const [name, sql] of Object.entries(queries)) {
      const detail = plan(sql);
      expect(`${name}: ${detail}`).toMatch(/USING (INDEX|COVERING INDEX|INTEGER PRIMARY KEY|PRIMARY KEY)/);
      expect(`${name}: ${detail}`).not.toMatch(/SCAN bbt_\w+(?!\w| USING)/);
    }
    db.close();
    return store.close();
  });

  it('upgrades a file written at an older schema version, keeping its tokens', async () => {
    const path = freshFile();
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    migrateSqlite(old, 'bbt_', path, 1);
    const record = makeRecord();
    old
      .prepare(
        `INSERT INTO bbt_tokens (id, user_name, user_key, name, name_key, scope, hash, created_at, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        record.id,
        record.user,
        record.user.toLowerCase(),
        record.name,
        'laptop',
        'read',
        record.hash,
        record.createdAt,
        'admin',
      );
    old.close();

    const store = new SqliteTokenStore({ path });
    expect(await store.get(record.id)).toEqual(record);
    expect(await store.claim('after-upgrade', 1_000)).toBe(true);
    await store.update(record.id, { resources: ['PROJ'] });
    expect((await store.get(record.id))?.resources).toEqual(['PROJ']);
    await store.putValue('after-upgrade', 'kept', 60_000);
    expect(await store.takeValue('after-upgrade')).toBe('kept');
    await store.close();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT version FROM bbt_schema_version').all()).toEqual([
      { version: SQLITE_SCHEMA_VERSION },
    ]);
    db.close();
  });

  it('refuses a file written by a newer release, naming both schema versions', async () => {
    const path = freshFile();
    await new SqliteTokenStore({ path }).close();
    const db = new Database(path);
    db.prepare('UPDATE bbt_schema_version SET version = 99').run();
    db.close();
    expect(() => new SqliteTokenStore({ path })).toThrow(
      new RegExp(`schema version 99.*schema version ${SQLITE_SCHEMA_VERSION} at most`),
    );
    try {
      new SqliteTokenStore({ path });
    } catch (err) {
      expect(err).toMatchObject({ name: 'StoreError', code: 'STORE_UNAVAILABLE' });
    }
  });

  it('keeps two stores with different table prefixes in one file apart', async () => {
    const path = freshFile();
    const a = new SqliteTokenStore({ path, tablePrefix: 'a_' });
    const b = new SqliteTokenStore({ path, tablePrefix: 'B_tokens_' });
    const record = makeRecord();
    await a.put(record);
    expect(await a.get(record.id)).toEqual(record);
    expect(await b.get(record.id)).toBeNull();
    await a.close();
    await b.close();
  });

  it('fails with STORE_UNAVAILABLE once closed, never "not found"', async () => {
    const store = new SqliteTokenStore({ path: freshFile() });
    await store.close();
    await expectStoreError(store.get(makeRecord().id));
    await expectStoreError(store.put(makeRecord()));
    await expectStoreError(store.countFailure('k', 1_000));
  });

  it('says where the file could not be opened', () => {
    expect(() => new SqliteTokenStore({ path: join(temp.dir, 'missing-dir', 'tokens.db') })).toThrow(
      /Cannot open the token database .*missing-dir/,
    );
  });

  it('rejects options it cannot use, naming them', () => {
    expect(() => new SqliteTokenStore({})).toThrow(/`path` or `database`/);
    expect(() => new SqliteTokenStore({ path: 'a.db', database: new Database(':memory:') })).toThrow(
      /only one/,
    );
    expect(() => new SqliteTokenStore({ path: 'a.db', tablePrefix: 'x"; DROP TABLE y; --' })).toThrow(
      /`tablePrefix`/,
    );
    expect(() => new SqliteTokenStore({ path: 'a.db', pollIntervalMs: 0 })).toThrow(/`pollIntervalMs`/);
    expect(() => new SqliteTokenStore({ path: 'a.db', synchronous: 'off' as 'full' })).toThrow(
      /`synchronous`/,
    );
    expect(() => new SqliteTokenStore({ path: 'a.db', pollInterval: 5 } as never)).toThrow(
      /did you mean `pollIntervalMs`/,
    );
  });

  it('refuses the better-sqlite3 majors that would crash the process: 13 on Node.js 20, 12 on 24', () => {
    expect(() => assertSupportedBetterSqlite3('13.0.0', '20.19.0')).toThrow(
      /better-sqlite3 13\.0\.0 needs Node\.js 22.*npm install better-sqlite3@12/,
    );
    expect(() => assertSupportedBetterSqlite3('12.11.1', '24.21.0')).toThrow(
      /better-sqlite3 12\.11\.1 aborts Node\.js 24\.21\.0.*npm install better-sqlite3@13/,
    );
    expect(() => assertSupportedBetterSqlite3('12.11.1', '20.19.0')).not.toThrow();
    expect(() => assertSupportedBetterSqlite3('12.11.1', '22.12.0')).not.toThrow();
    expect(() => assertSupportedBetterSqlite3('13.2.0', '22.12.0')).not.toThrow();
    expect(() => assertSupportedBetterSqlite3('13.2.0', '24.0.0')).not.toThrow();
  });

  it('tells what to install when an optional package is missing', () => {
    expect(() => requireOptional('not-installed-package-xyz', 'SqliteTokenStore')).toThrow(
      'SqliteTokenStore needs the `not-installed-package-xyz` package: npm install not-installed-package-xyz',
    );
  });
});
