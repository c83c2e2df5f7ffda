import type { Express, NextFunction, Request, Response } from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenGate, type TokenGate, type TokenGateOptions } from '../../lib/gate/create-token-gate.js';
import { EXPRESS_VERSIONS } from '../support/apps.js';
import { openRedisStore } from '../support/redis-store.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** A stand-in for the user's own login: the caller's name in a header. */
function testLogin(req: Request, _res: Response, next: NextFunction) {
  const user = req.headers['x-test-user'];
  if (typeof user === 'string') (req as { user?: unknown }).user = { name: user };
  next();
}

const STORES: Array<[string, () => Promise<Pick<TokenGateOptions, 'store'>>]> = [
  ['memory store', async () => ({})],
  [
    'Redis store',
    async () => {
      const { store, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
      cleanups.push(cleanup);
      return { store };
    },
  ],
];

const VERSIONS = EXPRESS_VERSIONS;

describe.each(STORES)('gate.router() on the %s', (_storeName, openStore) => {
  describe.each(VERSIONS)('with %s', (_name, makeApp) => {
    let gate: TokenGate;
    let app: Express;
    const events: AuditEvent[] = [];
    const ready = (async () => {
      gate = createTokenGate({
        ...(await openStore()),
        groups: { alice: ['devs'], bob: ['devs', 'writers'], admin: ['admins'], carol: [] },
        permissions: {
          createTokens: ['devs', 'admins'],
          createWriteTokens: ['writers', 'admins'],
          manageOthers: ['admins'],
        },
        expiry: { defaultDays: 30, maxDays: 90 },
        onEvent: (e) => events.push(e),
      });
      cleanups.push(() => gate.close());
      app = makeApp();
      app.use('/tokens', testLogin, gate.router());
      app.use('/rest', gate.protect(), (_req, res) => {
        res.json({ ok: true });
      });
    })();
    const as = async (user: string | undefined) => {
      await ready;
      const agent = (method: 'get' | 'post' | 'patch' | 'delete', path: string) => {
        const req = request(app)[method](`/tokens${path}`);
        return user === undefined ? req : req.set('X-Test-User', user);
      };
      return agent;
    };
    const create = async (user: string, body: Record<string, unknown>) =>
      (await as(user))('post', '/').send(body);

    it('refuses callers who are not logged in with 401', async () => {
      const res = await (await as(undefined))('get', '/');
      expect(res.status).toBe(401);
      expect(res.body.errors[0].code).toBe('NOT_AUTHENTICATED');
    });

    it('creates a token shown once, which then works on the API', async () => {
      const res = await create('alice', { name: 'laptop', scope: 'read' });
      expect(res.status).toBe(201);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toMatchObject({
        token: expect.stringMatching(/^bbt_/),
        user: 'alice',
        name: 'laptop',
        scope: 'read',
        createdBy: 'alice',
      });
      const days = (Date.parse(res.body.expiresAt) - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(29.9);
      expect(
        (await request(app).get('/rest/x').set('Authorization', `Bearer ${res.body.token}`)).status,
      ).toBe(200);
      const again = await (await as('alice'))('get', `/${res.body.id}`);
      expect(again.body.token).toBeUndefined();
    });

    it('applies createTokens, createWriteTokens and manageOthers', async () => {
      expect((await create('carol', { name: 'x', scope: 'read' })).status).toBe(403);
      expect((await create('alice', { name: 'x', scope: 'write' })).status).toBe(403);
      expect((await create('bob', { name: 'x', scope: 'write' })).status).toBe(201);
      expect((await create('alice', { name: 'x', scope: 'read', user: 'bob' })).status).toBe(403);
      const forBob = await create('admin', { name: 'deploy', scope: 'write', user: 'bob' });
      expect(forBob.status).toBe(201);
      expect(forBob.body).toMatchObject({ user: 'bob', createdBy: 'admin' });
      expect((await create('alice', { name: 'x', scope: 'read', user: 'ALICE' })).status).toBe(201);
    });

    it('never lets a token mint a token', async () => {
      const { body } = await create('bob', { name: 'x', scope: 'write' });
      const viaToken = await (await as('bob'))('post', '/')
        .set('Authorization', `Bearer ${body.token}`)
        .send({ name: 'y', scope: 'read' });
      expect(viaToken.status).toBe(403);
      expect(viaToken.body.errors[0].code).toBe('TOKEN_CANNOT_MINT');
      const viaBasic = await (await as('bob'))('post', '/')
        .set('Authorization', `Basic ${Buffer.from(`bob:${body.token}`).toString('base64')}`)
        .send({ name: 'y', scope: 'read' });
      expect(viaBasic.status).toBe(403);
    });

    it.each([
      [{ scope: 'read' }, 'name'],
      [{ name: '', scope: 'read' }, 'name'],
      [{ name: 'x'.repeat(101), scope: 'read' }, 'name'],
      [{ name: 'x', scope: 'admin' }, 'scope'],
      [{ name: 'x', scope: 'read', admin: true }, 'admin'],
      [{ name: 'x', scope: 'read', expiresInDays: 91 }, 'expiresInDays'],
      [{ name: 'x', scope: 'read', expiresInDays: 0 }, 'expiresInDays'],
      [{ name: 'x', scope: 'read', expiresInDays: '7' }, 'expiresInDays'],
      [{ name: 'x', scope: 'read', expiresInDays: 1.5 }, 'expiresInDays'],
      [{ name: 'x', scope: 'read', expiresAt: 'soon' }, 'expiresAt'],
      [{ name: 'x', scope: 'read', expiresInDays: 1, expiresAt: '2099-01-01T00:00:00Z' }, 'expiresInDays'],
      [{ name: 'x', scope: 'read', user: 'a:b' }, 'user'],
    ])('answers 400 naming the field for the body #%#', async (body, field) => {
      const res = await create('admin', body);
      expect(res.status).toBe(400);
      expect(res.body.errors[0].code).toBe('VALIDATION_FAILED');
      expect(res.body.errors[0].message).toContain(field);
    });

    it('answers 400 for bodies that are not a JSON object, 415 for non-JSON ones, and 413 for a huge one', async () => {
      const post = await as('alice');
      expect((await post('post', '/').set('Content-Type', 'application/json').send('{"name":')).status).toBe(
        400,
      );
      expect((await post('post', '/').set('Content-Type', 'text/plain').send('name=x')).status).toBe(415);
      expect((await post('post', '/').send([{ name: 'x' }])).status).toBe(400);
      expect((await post('post', '/').send({ name: 'x'.repeat(20_000), scope: 'read' })).status).toBe(413);
    });

    it('lists the caller’s own tokens, paged in Bitbucket’s shape', async () => {
      for (let i = 0; i < 3; i++) await create('bob', { name: `page-${i}`, scope: 'read' });
      const first = await (await as('bob'))('get', '/?limit=2&name=page-');
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({
        size: 2,
        limit: 2,
        start: 0,
        isLastPage: false,
        nextPageStart: expect.any(Number),
      });
      expect(first.body.values.every((t: { user: string }) => t.user === 'bob')).toBe(true);
      const next = await (await as('bob'))('get', `/?limit=2&name=page-&start=${first.body.nextPageStart}`);
      expect(next.body).toMatchObject({ size: 1, isLastPage: true });
      expect(next.body.values[0].token).toBeUndefined();
    });

    it('refuses listing someone else’s tokens without manageOthers, and allows it with', async () => {
      await create('bob', { name: 'mine', scope: 'read' });
      expect((await (await as('alice'))('get', '/?user=bob')).status).toBe(403);
      expect((await (await as('alice'))('get', '/?all=true')).status).toBe(403);
      const listed = await (await as('admin'))('get', '/?user=BOB');
      expect(listed.status).toBe(200);
      expect(listed.body.values.length).toBeGreaterThan(0);
      expect(listed.body.values.every((t: { user: string }) => t.user === 'bob')).toBe(true);
    });

    it('gives the token manager filters over everyone’s tokens', async () => {
      const marker = `mgr-${Math.random().toString(36).slice(2, 8)}`;
      await create('alice', { name: `${marker}-a`, scope: 'read' });
      await create('bob', { name: `${marker}-b`, scope: 'write' });
      const all = await (await as('admin'))('get', `/?all=true&name=${marker}`);
      expect(all.body.values.map((t: { user: string }) => t.user).sort()).toEqual(['alice', 'bob']);
      const writes = await (await as('admin'))('get', `/?all=true&name=${marker}&scope=write`);
      expect(writes.body.values.map((t: { user: string }) => t.user)).toEqual(['bob']);
      const soon = new Date(Date.now() + 31 * 86_400_000).toISOString();
      expect(
        (await (await as('admin'))('get', `/?all=true&name=${marker}&expiresBefore=${soon}`)).body.size,
      ).toBe(2);
      const past = new Date(Date.now() - 86_400_000).toISOString();
      expect(
        (
          await (
            await as('admin')
          )('get', `/?all=true&name=${marker}&createdAfter=${past}&lastUsedBefore=${past}`)
        ).body.size,
      ).toBe(2);
      expect((await (await as('admin'))('get', '/?all=true&scope=admin')).status).toBe(400);
      expect((await (await as('admin'))('get', '/?all=true&createdAfter=yesterday')).status).toBe(400);
      expect((await (await as('admin'))('get', '/?limit=0')).status).toBe(400);
      expect((await (await as('admin'))('get', '/?limit=abc')).status).toBe(400);
      expect((await (await as('admin'))('get', '/?limit=1&limit=2')).status).toBe(400);
    });

    it('answers 404 for someone else’s token exactly as for an unknown id', async () => {
      const { body } = await create('bob', { name: 'secret-project', scope: 'read' });
      const unknown = await (await as('alice'))('get', '/AAAAAAAAAAA');
      const foreign = await (await as('alice'))('get', `/${body.id}`);
      expect(foreign.status).toBe(404);
      expect(foreign.body).toEqual(unknown.body);
      for (const method of ['patch', 'delete'] as const) {
        const res = await (await as('alice'))(method, `/${body.id}`).send({ name: 'pwned' });
        expect(res.status).toBe(404);
        expect(res.body).toEqual(unknown.body);
      }
      expect((await (await as('admin'))('get', `/${body.id}`)).status).toBe(200);
      expect((await (await as('alice'))('get', '/..%2F..%2Fetc')).status).toBe(404);
    });

    it('renames and revokes, reporting each change without the secret', async () => {
      events.length = 0;
      const { body } = await create('alice', { name: 'old', scope: 'read' });
      const renamed = await (await as('alice'))('patch', `/${body.id}`).send({ name: 'new' });
      expect(renamed.body).toMatchObject({ id: body.id, name: 'new' });
      expect(
        (await (await as('alice'))('patch', `/${body.id}`).send({ name: 'x', scope: 'write' })).status,
      ).toBe(400);
      expect((await (await as('alice'))('delete', `/${body.id}`)).status).toBe(204);
      expect((await (await as('alice'))('delete', `/${body.id}`)).status).toBe(404);
      expect((await request(app).get('/rest/x').set('Authorization', `Bearer ${body.token}`)).status).toBe(
        401,
      );
      // Every refusal is an event too: the bad change (400), the second revoke (404) and the use (401).
      expect(events.map((e) => (e.type === 'auth.denied' ? `auth.denied ${e.code}` : e.type))).toEqual([
        'token.created',
        'token.updated',
        'auth.denied VALIDATION_FAILED',
        'token.revoked',
        'auth.denied TOKEN_NOT_FOUND',
        'auth.denied TOKEN_INVALID',
      ]);
      expect(events[2]).toMatchObject({ user: 'alice', method: 'PATCH', path: `/tokens/${body.id}` });
      expect(events[3]).toMatchObject({
        actor: 'alice',
        user: 'alice',
        tokenId: body.id,
        name: 'new',
        clientIp: expect.any(String),
      });
      expect(JSON.stringify(events)).not.toContain(body.token);
    });

    it('lets the token manager revoke anyone’s token', async () => {
      const { body } = await create('bob', { name: 'x', scope: 'read' });
      expect((await (await as('admin'))('delete', `/${body.id}`)).status).toBe(204);
      expect((await (await as('bob'))('get', `/${body.id}`)).status).toBe(404);
    });

    it('lets a token do one thing here: revoke itself', async () => {
      const write = (await create('bob', { name: 'w', scope: 'write' })).body;
      const other = (await create('bob', { name: 'other', scope: 'read' })).body;
      // No login at all: only the token, as a leaked token's finder (or its owner in a hurry) has it.
      const withToken = (method: 'get' | 'patch' | 'delete' | 'post', path: string) =>
        request(app)[method](`/tokens${path}`).set('Authorization', `Bearer ${write.token}`);
      for (const [method, path] of [
        ['get', '/'],
        ['get', `/${other.id}`],
        ['patch', `/${other.id}`],
        ['delete', `/${other.id}`],
        ['post', `/${other.id}/rotate`],
        ['post', '/revoke-all'],
      ] as const) {
        const res = await withToken(method, path).send({ name: 'hijacked', user: 'bob' });
        expect(res.status).toBe(403);
        expect(res.body.errors[0].code).toBe('TOKEN_CANNOT_MANAGE');
      }
      expect((await withToken('get', '/').set('X-Test-User', 'bob')).status).toBe(403);
      expect((await (await as('bob'))('get', `/${other.id}`)).body.name).toBe('other');
      expect((await withToken('delete', `/${write.id}`)).status).toBe(204);
      expect((await (await as('bob'))('get', `/${write.id}`)).status).toBe(404);
      expect((await withToken('delete', `/${write.id}`)).status).toBe(401);
    });

    it('creates, lists and changes tokens with restrictions, naming the field of a bad one', async () => {
      const res = await create('alice', {
        name: 'ci',
        scope: 'read',
        allowedIps: ['10.0.0.0/8', '192.0.2.1-192.0.2.9'],
        requiredHeaders: { 'X-CI-Runner': 'build-7' },
        resources: ['proj/Repo', '~alice/*'],
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        allowedIps: ['10.0.0.0/8', '192.0.2.1-192.0.2.9'],
        requiredHeaders: { 'x-ci-runner': 'build-7' },
        resources: ['PROJ/repo', '~alice/*'],
      });
      const restricted = await (await as('alice'))('get', '/?restricted=true');
      expect(restricted.body.values.map((t: { id: string }) => t.id)).toContain(res.body.id);
      const changed = await (await as('alice'))('patch', `/${res.body.id}`).send({
        resources: null,
        name: 'ci2',
      });
      expect(changed.body).toMatchObject({
        name: 'ci2',
        resources: null,
        allowedIps: ['10.0.0.0/8', '192.0.2.1-192.0.2.9'],
      });
      for (const [body, field] of [
        [{ allowedIps: ['10.0.0.7/8'] }, 'allowedIps[0]'],
        [{ allowedIps: [] }, 'allowedIps'],
        [{ requiredHeaders: { Authorization: 'x' } }, 'requiredHeaders.Authorization'],
        [{ requiredHeaders: { 'X-A': ' padded ' } }, 'requiredHeaders.X-A'],
        [{ resources: ['a/b/c'] }, 'resources[0]'],
        [{ scope: 'write' }, 'scope'],
      ] as const) {
        const bad = await (await as('alice'))('patch', `/${res.body.id}`).send(body);
        expect(bad.status).toBe(400);
        expect(bad.body.errors[0].message).toContain(field);
      }
      const hostBits = await create('alice', { name: 'x', scope: 'read', allowedIps: ['10.0.0.7/8'] });
      expect(hostBits.body.errors[0].message).toContain('10.0.0.0/8');
    });

    it('refuses to rotate a write token for a caller who may no longer create write tokens', async () => {
      const forAlice = (await create('admin', { name: 'deploy', scope: 'write', user: 'alice' })).body;
      const rotated = await (await as('alice'))('post', `/${forAlice.id}/rotate`);
      expect(rotated.status).toBe(403);
      expect(rotated.body.errors[0].code).toBe('PERMISSION_DENIED');
    });

    it('rotates and copies a token, and offboards a user', async () => {
      const original = (await create('bob', { name: 'deploy', scope: 'write', resources: ['OPS'] })).body;
      const rotated = await (await as('bob'))('post', `/${original.id}/rotate`).send({ graceMs: 60_000 });
      expect(rotated.status).toBe(201);
      expect(rotated.body).toMatchObject({ name: 'deploy', scope: 'write', resources: ['OPS'], user: 'bob' });
      expect(rotated.body.token).not.toBe(original.token);
      const old = await (await as('bob'))('get', `/${original.id}`);
      expect(Date.parse(old.body.expiresAt)).toBeLessThanOrEqual(Date.now() + 60_000);
      const copy = await (await as('bob'))('post', `/${rotated.body.id}/copy`);
      expect(copy.status).toBe(201);
      expect(copy.body).toMatchObject({ name: 'deploy', resources: ['OPS'] });
      expect((await (await as('alice'))('post', '/revoke-all').send({ user: 'bob' })).status).toBe(403);
      const offboard = await (await as('admin'))('post', '/revoke-all').send({ user: 'bob' });
      expect(offboard.status).toBe(200);
      expect(offboard.body.revoked).toBeGreaterThanOrEqual(3);
      expect((await (await as('bob'))('get', '/')).body.values).toEqual([]);
    });
  });
});

describe('gate.router() options', () => {
  it('takes a principal function and refuses a bad one', async () => {
    const gate = createTokenGate();
    const app = EXPRESS_VERSIONS[1]![1]();
    app.use('/tokens', gate.router({ principal: (req) => req.get('x-user') }));
    const res = await request(app).post('/tokens').set('x-user', 'dave').send({ name: 'x', scope: 'read' });
    expect(res.status).toBe(201);
    expect(() => gate.router({ principal: 'user' as never })).toThrow(/`principal`/);
    await gate.close();
  });
});
