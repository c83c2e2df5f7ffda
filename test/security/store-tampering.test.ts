import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { assembleToken, generateToken } from '../../lib/tokens/format.js';
import { bcryptHasher } from '../../lib/tokens/hashers.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { dropSchema, freshSchema, testPool } from '../support/postgres.js';
import { openRedisStore } from '../support/redis-store.js';
import { tempDir } from '../support/temp-dir.js';

const PEPPER = 'tamper-test-pepper';
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A store, and raw access to one token's stored fields as someone with write access has it. */
interface Backend {
  store: TokenStore;
  /** Sets stored fields of one token with the backend's own commands (no library code). */
  write(id: string, fields: Partial<Record<RawField, string | number | null>>): Promise<void>;
}

type RawField = 'user' | 'scope' | 'resources' | 'expiresAt' | 'upstream' | 'hash' | 'seal';

/** Column names of the SQL stores; JSON columns take JSON text. */
const COLUMNS: Record<RawField, string[]> = {
  user: ['user_name', 'user_key'],
  scope: ['scope'],
  resources: ['resources'],
  expiresAt: ['expires_at'],
  upstream: ['upstream'],
  hash: ['hash'],
  seal: ['seal'],
};

const sqlUpdates = (fields: Partial<Record<RawField, string | number | null>>) =>
  Object.entries(fields).flatMap(([field, value]) =>
    COLUMNS[field as RawField].map((column) => [column, value] as const),
  );

const backends: Record<string, () => Promise<Backend>> = {
  Redis: async () => {
    const { store, redis, keyPrefix, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    cleanups.push(cleanup);
    return {
      store,
      write: async (id, fields) => {
        const key = `${keyPrefix}:t:{${id}}`;
        for (const [field, value] of Object.entries(fields))
          await redis.call('HSET', key, field, value === null ? '' : String(value));
      },
    };
  },
  PostgreSQL: async () => {
    const pool = testPool();
    const schema = freshSchema('tamper');
    const store = new PostgresTokenStore({ pool, schema });
    cleanups.push(async () => {
      await store.close();
      await dropSchema(pool, schema);
      await pool.end();
    });
    return {
      store,
      write: async (id, fields) => {
        const updates = sqlUpdates(fields);
        await pool.query(
          `UPDATE "${schema}".bbt_tokens SET ${updates.map(([c], i) => `${c} = $${i + 1}`).join(', ')} WHERE id = $${updates.length + 1}`,
          [...updates.map(([, v]) => v), id],
        );
      },
    };
  },
  SQLite: async () => {
    const { dir, remove } = tempDir('tamper');
    const path = `${dir}/tokens.db`;
    const store = new SqliteTokenStore({ path });
    const raw = new Database(path);
    cleanups.push(
      remove,
      () => store.close(),
      () => void raw.close(),
    );
    return {
      store,
      write: async (id, fields) => {
        const updates = sqlUpdates(fields);
        raw
          .prepare(`UPDATE bbt_tokens SET ${updates.map(([c]) => `${c} = ?`).join(', ')} WHERE id = ?`)
          .run(...updates.map(([, v]) => v), id);
      },
    };
  },
};

const noSecretIn = (events: AuditEvent[], secrets: string[]) => {
  const text = JSON.stringify(events);
  for (const secret of secrets) expect(text).not.toContain(secret.slice(4));
};

for (const [kind, open] of Object.entries(backends)) {
  describe(`a record edited directly in ${kind}`, () => {
    let gate: TokenGate;
    let backend: Backend;
    const events: AuditEvent[] = [];
    const app = () => echoApp(EXPRESS_VERSIONS[1]![1], gate.protect());
    const status = async (
      token: string,
      method: 'get' | 'post' = 'get',
      path = '/rest/api/1.0/projects/OK/repos/r',
    ) => (await request(app())[method](path).set('Authorization', `Bearer ${token}`)).status;
    /** A fresh read token of eve limited to OK/*, expiring in a day: not yet verified, so not cached. */
    const eves = () =>
      gate.tokens.create({
        user: 'eve',
        name: 'mine',
        scope: 'read',
        resources: ['OK/*'],
        expiresAt: new Date(Date.now() + 86_400_000),
      });

    it('is set up: an untouched token passes', async () => {
      backend = await open();
      gate = createTokenGate({ store: backend.store, pepper: PEPPER, onEvent: (e) => events.push(e) });
      cleanups.push(() => gate.close());
      const { token } = await eves();
      expect(await status(token)).toBe(200);
    });

    it.each<[string, Partial<Record<RawField, string | number | null>>]>([
      ['owner → admin', { user: 'admin' }],
      ['scope → write', { scope: 'write' }],
      ['restrictions removed', { resources: null }],
      ['expiry pushed out', { expiresAt: Date.now() + 10 * 365 * 86_400_000 }],
      ['upstream credential swapped', { upstream: 'someone-elses-sealed-credential' }],
      ['seal removed', { seal: null }],
    ])('refuses it (%s) with 401, as a wrong secret, and reports token.tampered', async (_, fields) => {
      const { token, info } = await eves();
      await backend.write(info.id, fields);
      events.length = 0;
      const res = await request(app())
        .get('/rest/api/1.0/projects/OK/repos/r')
        .set('Authorization', `Bearer ${token}`);
      const wrongSecret = assembleToken('bbt', info.id, generateToken('bbt').secret);
      const wrong = await request(app())
        .get('/rest/api/1.0/projects/OK/repos/r')
        .set('Authorization', `Bearer ${wrongSecret}`);
      expect(res.status).toBe(401);
      expect(res.body).toEqual(wrong.body);
      expect(events.find((e) => e.type === 'token.tampered')).toMatchObject({
        type: 'token.tampered',
        tokenId: info.id,
        reason: fields.seal === null ? 'unsealed' : 'broken',
      });
      noSecretIn(events, [token]);
      expect(await gate.tokens.verify(token)).toBeNull();
    });

    it('refuses a record that borrows another token’s owner, scope and seal', async () => {
      const mine = await eves();
      const theirs = await gate.tokens.create({ user: 'admin', name: 'admin', scope: 'write' });
      const stored = (await backend.store.get(theirs.info.id))!;
      await backend.write(mine.info.id, {
        user: 'admin',
        scope: 'write',
        resources: null,
        seal: stored.seal!,
      });
      expect(await status(mine.token)).toBe(401);
      expect(await status(theirs.token)).toBe(200);
    });

    it('never lets a legitimate change seal a tampered record', async () => {
      const { info } = await eves();
      await backend.write(info.id, { scope: 'write' });
      expect(await gate.tokens.update(info.id, { resources: ['OK/r'] })).toBeNull();
      await expect(gate.tokens.copy(info.id)).rejects.toMatchObject({ code: 'TOKEN_NOT_FOUND' });
      await expect(gate.tokens.rotate(info.id)).rejects.toMatchObject({ code: 'TOKEN_NOT_FOUND' });
    });

    it('keeps tokens working through legitimate changes: rename, restrictions, rotation, copy', async () => {
      const { token, info } = await eves();
      await gate.tokens.update(info.id, { name: 'renamed' });
      await gate.tokens.update(info.id, { resources: ['OK/r'], allowedIps: ['0.0.0.0/0', '::/0'] });
      expect(await status(token)).toBe(200);
      const copy = await gate.tokens.copy(info.id);
      expect(await status(copy.token)).toBe(200);
      const rotated = await gate.tokens.rotate(info.id, { graceMs: 60_000 });
      expect(await status(rotated.token)).toBe(200);
      expect(await status(token)).toBe(200); // the grace period moved the old one's expiry: resealed
    });
  });
}

describe('records written before 0.3.0 (no seal)', () => {
  it('are refused until sealed once with sealUnsealed(), after which they work', async () => {
    const { dir, remove } = tempDir('unsealed');
    const store = new SqliteTokenStore({ path: `${dir}/tokens.db` });
    cleanups.push(remove, () => store.close());
    const events: AuditEvent[] = [];
    const gate = createTokenGate({
      store,
      pepper: PEPPER,
      onEvent: (e) => events.push(e),
      cache: { maxEntries: 0 },
    });
    cleanups.push(() => gate.close());
    const { token, info } = await gate.tokens.create({ user: 'old', name: 'from 0.2.0', scope: 'read' });
    const raw = new Database(`${dir}/tokens.db`);
    raw.prepare('UPDATE bbt_tokens SET seal = NULL WHERE id = ?').run(info.id);
    raw.close();
    expect(await gate.tokens.verify(token)).toBeNull();
    expect(events.at(-1)).toMatchObject({ type: 'token.tampered', reason: 'unsealed', tokenId: info.id });
    expect(await gate.tokens.sealUnsealed()).toEqual({ sealed: 1, intact: 0, broken: 0 });
    expect(await gate.tokens.verify(token)).toMatchObject({ id: info.id, user: 'old' });
    expect(await gate.tokens.sealUnsealed()).toEqual({ sealed: 0, intact: 1, broken: 0 });
  });
});

describe('the seal with the bcrypt hasher', () => {
  it('binds the record when bcrypt is given a pepper', async () => {
    const hasher = bcryptHasher({ cost: 4, threads: 0, pepper: PEPPER });
    const backend = await backends['SQLite']!();
    const gate = createTokenGate({ store: backend.store, hasher, cache: { maxEntries: 0 } });
    cleanups.push(() => gate.close());
    const { token, info } = await gate.tokens.create({ user: 'eve', name: 'b', scope: 'read' });
    expect(await gate.tokens.verify(token)).not.toBeNull();
    await backend.write(info.id, { user: 'admin' });
    expect(await gate.tokens.verify(token)).toBeNull();
  });
});
