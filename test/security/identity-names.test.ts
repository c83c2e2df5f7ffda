import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bitbucketGroups } from '../../lib/bitbucket/groups.js';
import { ValidationError } from '../../lib/errors.js';
import { createTokenGate, oidcLogin, passwordLogin, type TokenGate } from '../../lib/index.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { makeRecord } from '../../lib/testing/index.js';
import { foldName, sameUser, validateUser } from '../../lib/validate.js';
import { startBitbucketStandIn } from '../support/bitbucket-stand-in.js';
import { ssoLogin } from '../support/oidc-login-flow.js';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { dropSchema, freshSchema, testPool } from '../support/postgres.js';
import { openRedisStore } from '../support/redis-store.js';
import { tempDir } from '../support/temp-dir.js';

const hasAscii = (text: string) => [...text].some((c) => c.codePointAt(0)! < 0x80);

/**
 * Every code point outside ASCII whose lower or upper case contains ASCII (U+212A KELVIN SIGN
 * → `k`, U+017F → `S`, `ß` → `SS`, the ligatures, …): enumerated from Unicode as this Node.js
 * knows it, never a hand-written list.
 */
const FOLDING: string[] = [];
for (let cp = 0x80; cp <= 0x10ffff; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  const c = String.fromCodePoint(cp);
  if (hasAscii(c.toLowerCase()) || hasAscii(c.toUpperCase())) FOLDING.push(c);
}

/** The ASCII a folding character turns into, lower-cased: `K` → `k`, `ß` → `ss`, `ﬃ` → `ffi`. */
function asciiOf(c: string): string {
  const mapped = hasAscii(c.toLowerCase()) ? c.toLowerCase() : c.toUpperCase();
  return [...mapped]
    .filter((x) => hasAscii(x))
    .join('')
    .toLowerCase();
}

const hex = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
/** The genuine ASCII name and its look-alike through character `c` (one pair per character). */
const victimOf = (c: string) => `v${FOLDING.indexOf(c)}-${asciiOf(c)}-user`;
const spoofOf = (c: string) => `v${FOLDING.indexOf(c)}-${c}-user`;
const SECRET = 'a session secret of at least thirty-two bytes';

describe('one user, one spelling', () => {
  it('finds the folding characters in Unicode (the test enumerates, it does not list)', () => {
    expect(FOLDING).toContain('\u212A');
    expect(FOLDING).toContain('\u017F');
    expect(FOLDING).toContain('\u0130');
    expect(FOLDING).toContain('\u0131');
    expect(FOLDING.length).toBeGreaterThan(15);
    for (const c of FOLDING) expect(asciiOf(c), hex(c)).toMatch(/^[a-z]+$/);
  });

  it('refuses every name with a folding character or not in NFC, naming the field; keeps the others', () => {
    for (const c of FOLDING) {
      expect(() => validateUser(spoofOf(c)), hex(c)).toThrow(ValidationError);
      expect(() => validateUser(`${c}ate`, 'username'), hex(c)).toThrow(
        /`username`.*changes case into ASCII|NFC/,
      );
      // Comparisons never fold it into the ASCII name either.
      expect(sameUser(spoofOf(c), victimOf(c)), hex(c)).toBe(false);
      expect(foldName(spoofOf(c)), hex(c)).not.toBe(victimOf(c));
    }
    expect(() => validateUser('Jo\u0065\u0301l')).toThrow(/NFC/);
    for (const fine of [
      'kate',
      'Kate',
      'Jo\u00E9l',
      'J\u00FCrgen',
      '\u00C6var',
      '\u738B\u4F1F',
      '\u0421\u0435\u0440\u0433\u0435\u0439',
    ])
      expect(validateUser(fine)).toBe(fine);
    expect(sameUser('J\u00DCRGEN', 'j\u00FCrgen')).toBe(true);
    expect(sameUser('KATE', 'kate')).toBe(true);
  });

  it('refuses look-alike users and groups in the gate’s options at startup, naming the option', () => {
    for (const c of FOLDING) {
      expect(() => createTokenGate({ permissions: { manageOthers: [`${c}-admins`] } }), hex(c)).toThrow(
        /`permissions\.manageOthers\[0\]`/,
      );
      expect(() => createTokenGate({ groups: { [`${c}ate`]: ['developers'] } }), hex(c)).toThrow(/`groups`/);
      expect(() => createTokenGate({ groups: { kate: [`${c}-admins`] } }), hex(c)).toThrow(
        /`groups\["kate"\]\[0\]`/,
      );
    }
  });

  describe('stores never list a victim’s tokens under a look-alike', () => {
    const opened: TokenStore[] = [];
    const temp = tempDir('names');
    const pool = testPool();
    const schema = freshSchema('names');
    let redis: Awaited<ReturnType<typeof openRedisStore>> | undefined;
    afterAll(async () => {
      for (const store of opened) await store.close?.();
      await redis?.cleanup();
      await dropSchema(pool, schema);
      await pool.end();
      temp.remove();
    });

    const kinds: Array<[string, () => Promise<TokenStore>]> = [
      ['memory', async () => new MemoryTokenStore()],
      ['SQLite', async () => new SqliteTokenStore({ path: join(temp.dir, 'names.db') })],
      ['PostgreSQL', async () => new PostgresTokenStore({ pool, schema })],
      [
        'Redis',
        async () => {
          redis = await openRedisStore(new Redis(inject('redisUrl')));
          return redis.store;
        },
      ],
    ];
    it.each(kinds)('%s', async (_kind, open) => {
      const store = await open();
      opened.push(store);
      for (const c of FOLDING) await store.put(makeRecord({ user: victimOf(c) }));
      await store.put(makeRecord({ user: 'kate' }));
      for (const c of FOLDING) {
        expect(await store.listByUser(spoofOf(c)), hex(c)).toEqual([]);
        expect((await store.search({ user: spoofOf(c), start: 0, limit: 10 })).values, hex(c)).toEqual([]);
        expect(await store.listByUser(victimOf(c).toUpperCase()), hex(c)).toHaveLength(1);
      }
      expect(await store.listByUser('\u212Aate')).toEqual([]);
      expect(await store.listByUser('KATE')).toHaveLength(1);
    });
  });

  describe('the management API', () => {
    let gate: TokenGate;
    let app: express.Express;
    const ids = new Map<string, string>();

    beforeAll(async () => {
      // root is a real admin; mallory-<i> holds the look-alike of the admin group `<ascii>-admins`.
      gate = createTokenGate({
        groups: (user) =>
          user === 'root'
            ? ['bitbucket-admins']
            : user.startsWith('mallory-')
              ? [`${FOLDING[Number(user.slice(8))]}-admins`, 'bitbuc\u212Aet-admins']
              : [],
        permissions: {
          manageOthers: ['bitbucket-admins', ...new Set(FOLDING.map((c) => `${asciiOf(c)}-admins`))],
        },
      });
      app = express();
      // The principal comes percent-encoded (a header cannot carry it raw), as an SSO proxy may send it.
      const principal = (req: express.Request) => {
        const value = req.header('x-user');
        return value === undefined ? undefined : decodeURIComponent(value);
      };
      app.use('/tokens', gate.router({ principal }));
      for (const c of FOLDING) {
        const { info } = await gate.tokens.create({ user: victimOf(c), name: 'laptop', scope: 'read' });
        ids.set(victimOf(c), info.id);
      }
    });
    afterAll(() => gate.close());

    it('a look-alike principal is not logged in: it never lists, opens or rotates the victim’s tokens', async () => {
      for (const c of FOLDING) {
        const id = ids.get(victimOf(c))!;
        const as = encodeURIComponent(spoofOf(c));
        expect((await request(app).get('/tokens/').set('x-user', as)).status, hex(c)).toBe(401);
        expect((await request(app).get(`/tokens/${id}`).set('x-user', as)).status, hex(c)).toBe(401);
        expect((await request(app).post(`/tokens/${id}/rotate`).set('x-user', as)).status, hex(c)).toBe(401);
      }
      // The genuine spelling, in any case, is the owner: the test can fail.
      const genuine = await request(app).get('/tokens/').set('x-user', victimOf('\u212A').toUpperCase());
      expect(genuine.body.size).toBe(1);
    });

    it('a look-alike group never satisfies manageOthers', async () => {
      for (const [i, c] of FOLDING.entries()) {
        const id = ids.get(victimOf(c))!;
        const caller = `mallory-${i}`;
        expect(
          (
            await request(app)
              .get(`/tokens/?user=${encodeURIComponent(victimOf(c))}`)
              .set('x-user', caller)
          ).status,
          hex(c),
        ).toBe(403);
        expect((await request(app).get(`/tokens/${id}`).set('x-user', caller)).status, hex(c)).toBe(404);
        expect((await request(app).post(`/tokens/${id}/rotate`).set('x-user', caller)).status, hex(c)).toBe(
          404,
        );
      }
      // The genuine group works: the test can fail.
      expect(
        (
          await request(app)
            .get(`/tokens/?user=${victimOf('\u212A')}`)
            .set('x-user', 'root')
        ).body.size,
      ).toBe(1);
    });

    it('a look-alike owner or filter is a 400 naming `user`', async () => {
      for (const c of FOLDING) {
        const created = await request(app)
          .post('/tokens/')
          .set('x-user', 'root')
          .send({ name: 'x', scope: 'read', user: spoofOf(c) });
        expect(created.status, hex(c)).toBe(400);
        expect(created.body.errors[0].message, hex(c)).toMatch(/^`user`/);
        const listed = await request(app)
          .get(`/tokens/?user=${encodeURIComponent(spoofOf(c))}`)
          .set('x-user', 'root');
        expect(listed.status, hex(c)).toBe(400);
        const revoked = await request(app)
          .post('/tokens/revoke-all')
          .set('x-user', 'root')
          .send({ user: spoofOf(c) });
        expect(revoked.status, hex(c)).toBe(400);
      }
      expect(await gate.tokens.list(victimOf('\u212A'))).toHaveLength(1);
    });
  });

  it('a token stored under a look-alike before the rule (an upgrade from 0.2.0) no longer authenticates', async () => {
    const store = new MemoryTokenStore();
    const gate = createTokenGate({ store });
    const app = express().use('/rest', gate.protect(), (req, res) => {
      res.json({ user: req.auth?.user });
    });
    try {
      const genuine = await gate.tokens.create({ user: 'kate', name: 'laptop', scope: 'read' });
      for (const c of FOLDING) {
        // As 0.2.0 stored it: the record of a look-alike owner, written straight into the store.
        const { token, info } = await gate.tokens.create({
          user: victimOf(c),
          name: 'legacy',
          scope: 'read',
        });
        const record = (await store.get(info.id))!;
        await store.put({ ...record, user: spoofOf(c) });
        const res = await request(app).get('/rest/api/1.0/projects').set('Authorization', `Bearer ${token}`);
        expect(res.status, hex(c)).toBe(401);
      }
      const ok = await request(app)
        .get('/rest/api/1.0/projects')
        .set('Authorization', `Bearer ${genuine.token}`);
      expect(ok.body).toEqual({ user: 'kate' });
    } finally {
      await gate.close();
    }
  });

  it('a look-alike never inherits kate’s cached Bitbucket groups', async () => {
    const bitbucket = await startBitbucketStandIn({
      adminToken: 'admin-http-token',
      groups: { kate: ['bitbucket-admins'] },
      passwords: {},
    });
    try {
      const resolve = bitbucketGroups({ baseUrl: bitbucket.baseUrl, token: 'admin-http-token' });
      expect(await resolve('kate')).toEqual(['bitbucket-admins']);
      const asked = bitbucket.calls.length;
      for (const c of FOLDING) expect(await resolve(`${c}ate`), hex(c)).toEqual([]);
      expect(bitbucket.calls).toHaveLength(asked);
    } finally {
      await bitbucket.close();
    }
  });

  describe('logins', () => {
    let server: Server;
    let base: string;
    let gate: TokenGate;
    let oidc: TestOidcProvider;
    const verified: string[] = [];

    beforeAll(async () => {
      gate = createTokenGate({ permissions: { manageOthers: ['bitbucket-admins'] } });
      await gate.tokens.create({ user: 'kate', name: 'kate’s laptop', scope: 'read' });
      const app = express();
      server = app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      oidc = await startOidcProvider({
        redirectUris: [`${base}/sso/login/callback`],
        groups: { mallory: ['bitbuc\u212Aet-admins'], root: ['bitbucket-admins'] },
      });
      app.use(
        '/pw',
        gate.pages({
          // A directory that takes any spelling: the pages must refuse before asking it.
          login: passwordLogin({
            verify: async (user) => {
              verified.push(user);
              return { name: user, slug: user };
            },
          }),
          session: { secret: SECRET, secure: false },
        }),
      );
      app.use(
        '/sso',
        gate.pages({
          login: oidcLogin({
            issuer: oidc.issuer,
            clientId: oidc.clientId,
            clientSecret: oidc.clientSecret,
            redirectUri: `${base}/sso/login/callback`,
            groupsClaim: 'groups',
            allowHttp: true,
          }),
          session: { secret: SECRET, secure: false, cookieName: 'sso_session' },
        }),
      );
    });
    afterAll(async () => {
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
      await gate?.close();
      await oidc?.close();
    });

    it('the password form refuses every look-alike without asking the directory', async () => {
      for (const c of FOLDING) {
        const agent = request.agent(server);
        const form = await agent.get('/pw/login');
        const csrf = /name="_csrf" value="([^"]+)"/.exec(form.text)?.[1] ?? '';
        const res = await agent
          .post('/pw/login')
          .type('form')
          .send({ _csrf: csrf, username: `${c}ate`, password: 'anything' });
        expect(res.status, hex(c)).toBe(401);
        expect(res.text).not.toContain('kate’s laptop');
      }
      expect(verified).toEqual([]);
    });

    it('single sign-on refuses a look-alike user claim and drops a look-alike group', async () => {
      for (const c of FOLDING) {
        const login = await ssoLogin(`${base}/sso/`, `${c}ate`);
        expect(login.status, hex(c)).toBe(401);
      }
      const mallory = await ssoLogin(`${base}/sso/`, 'mallory');
      expect(mallory.status).toBe(303);
      const cookie = [...mallory.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      expect((await fetch(`${base}/sso/manage`, { headers: { cookie } })).status).toBe(403);
      const root = await ssoLogin(`${base}/sso/`, 'root');
      const rootCookie = [...root.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      expect((await fetch(`${base}/sso/manage`, { headers: { cookie: rootCookie } })).status).toBe(200);
    });
  });

  it('the CLI refuses a look-alike --user', { timeout: 120_000 }, async () => {
    const temp = tempDir('names-cli');
    const url = `sqlite:${join(temp.dir, 'cli.db')}`;
    const store = new SqliteTokenStore({ path: join(temp.dir, 'cli.db') });
    const kate = makeRecord({ user: 'kate' });
    await store.put(kate);
    await store.close();
    const cli = (args: string[]) =>
      new Promise<{ code: number; out: string }>((done) => {
        execFile(
          process.execPath,
          [resolve('node_modules/tsx/dist/cli.mjs'), resolve('lib/cli/main.ts'), ...args],
          {
            env: {
              PATH: process.env['PATH'],
              HOME: process.env['HOME'],
              TOKEN_STORE: url,
              TOKEN_PEPPER: 'names-pepper',
            },
          },
          (err, stdout, stderr) =>
            done({
              code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1,
              out: stdout + stderr,
            }),
        );
      });
    try {
      const genuine = await cli(['list', '--user', 'KATE', '--json']);
      expect(genuine.out).toContain(kate.id);
      const runs = await Promise.all([
        ...FOLDING.map((c) => cli(['list', '--user', `${c}ate`, '--json'])),
        ...['\u212A', '\u017F'].map((c) =>
          cli(['create', '--user', `${c}ate`, '--name', 'x', '--scope', 'read']),
        ),
      ]);
      for (const run of runs) {
        expect(run.code, run.out).toBe(2);
        expect(run.out).not.toContain(kate.id);
      }
    } finally {
      temp.remove();
    }
  });
});
