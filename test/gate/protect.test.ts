import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenGate, type TokenGateOptions } from '../../lib/gate/create-token-gate.js';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { verifierOf } from '../../lib/tokens/service.js';
import { basic, EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { openRedisStore } from '../support/redis-store.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

const STORES: Array<[string, () => Promise<Pick<TokenGateOptions, 'store'>>]> = [
  ['memory store', async () => ({})],
  [
    'Redis store',
    async () => {
      const { store, cleanup } = await openRedisStore(
        new Redis(inject('redisUrl'), { enableOfflineQueue: false }),
      );
      cleanups.push(cleanup);
      return { store };
    },
  ],
];

describe.each(STORES)('gate.protect() on the %s', (_storeName, openStore) => {
  describe.each(EXPRESS_VERSIONS)('with %s', (_name, makeApp) => {
    const setup = async (options: TokenGateOptions = {}) => {
      const events: AuditEvent[] = [];
      const gate = createTokenGate({
        ...(await openStore()),
        groups: { alice: ['api-users'], bob: ['others'] },
        permissions: { useTokens: ['api-users'] },
        ipAllowlist: ['127.0.0.0/8', '203.0.113.0/24', '2001:db8::/32'],
        trustedProxies: ['loopback'],
        blockPasswordAuth: true,
        auditSuccess: true,
        onEvent: (e) => events.push(e),
        ...options,
      });
      cleanups.push(() => gate.close());
      const app = echoApp(makeApp, gate.protect());
      return { gate, app, events };
    };

    it('lets a valid token through every check and forwards only the identity', async () => {
      const { gate, app, events } = await setup();
      const { token, info } = await gate.tokens.create({ user: 'alice', name: 'ci', scope: 'read' });
      const res = await request(app)
        .get('/rest/api/1.0/projects')
        .set('Authorization', basic('alice', token))
        .set('X-Forwarded-For', '203.0.113.10')
        .set('X-Forwarded-User', 'admin');
      expect(res.status).toBe(200);
      expect(res.body.headers['x-forwarded-user']).toBe('alice');
      expect(res.body.headers.authorization).toBeUndefined();
      expect(res.body.auth).toMatchObject({
        kind: 'token',
        user: 'alice',
        clientIp: '203.0.113.10',
        requiredScope: 'read',
      });
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'auth.succeeded', tokenId: info.id, user: 'alice' }),
      );
      expect(JSON.stringify(events)).not.toContain(token);
    });

    it('refuses in order: password, address, bad token, group, scope', async () => {
      const { gate, app } = await setup();
      const alice = (await gate.tokens.create({ user: 'alice', name: 'r', scope: 'read' })).token;
      const bob = (await gate.tokens.create({ user: 'bob', name: 'r', scope: 'write' })).token;
      const codeOf = async (req: request.Test) => {
        const res = await req;
        return [res.status, res.body.errors?.[0]?.code];
      };
      expect(await codeOf(request(app).get('/rest').set('Authorization', basic('alice', 'hunter2')))).toEqual(
        [401, 'PASSWORD_AUTH_DISABLED'],
      );
      // The address is judged before the token: from outside, a valid and a bad token get one answer.
      const outside = async (authorization: string) => {
        const res = await request(app)
          .get('/rest')
          .set('Authorization', authorization)
          .set('X-Forwarded-For', '198.51.100.1');
        return [res.status, res.text];
      };
      expect(await outside(`Bearer ${alice}`)).toEqual(await outside('Bearer bbt_nope'));
      expect((await outside(`Bearer ${alice}`))[0]).toBe(403);
      expect(
        await codeOf(
          request(app)
            .get('/rest')
            .set('Authorization', 'Bearer bbt_nope')
            .set('X-Forwarded-For', '203.0.113.1'),
        ),
      ).toEqual([401, 'TOKEN_INVALID']);
      expect(
        await codeOf(
          request(app)
            .get('/rest')
            .set('Authorization', `Bearer ${bob}`)
            .set('X-Forwarded-For', '203.0.113.1'),
        ),
      ).toEqual([403, 'GROUP_REQUIRED']);
      expect(
        await codeOf(
          request(app)
            .post('/rest')
            .set('Authorization', `Bearer ${alice}`)
            .set('X-Forwarded-For', '203.0.113.1'),
        ),
      ).toEqual([403, 'SCOPE_INSUFFICIENT']);
    });

    it('passes anonymous requests on untouched, or refuses them with anonymous: deny', async () => {
      const { app } = await setup();
      expect(
        (await request(app).get('/rest/api/1.0/projects').set('X-Forwarded-For', '198.51.100.1')).status,
      ).toBe(200);
      const strict = await setup({ anonymous: 'deny' });
      expect((await request(strict.app).get('/rest')).status).toBe(401);
    });

    it('refuses a revoked token at once', async () => {
      const { gate, app } = await setup();
      const { token, info } = await gate.tokens.create({ user: 'alice', name: 'r', scope: 'read' });
      const send = () =>
        request(app)
          .get('/rest')
          .set('Authorization', `Bearer ${token}`)
          .set('X-Forwarded-For', '203.0.113.1');
      expect((await send()).status).toBe(200);
      await gate.tokens.revoke(info.id);
      expect((await send()).status).toBe(401);
    });

    it('records a use only for requests every check let through', async () => {
      const { gate, app } = await setup();
      const { token, info } = await gate.tokens.create({ user: 'alice', name: 'r', scope: 'read' });
      const bobs = await gate.tokens.create({ user: 'bob', name: 'r', scope: 'read' });
      const refusedByAddress = request(app).get('/rest').set('Authorization', `Bearer ${token}`);
      const refusedByScope = request(app)
        .post('/rest')
        .set('Authorization', `Bearer ${token}`)
        .set('X-Forwarded-For', '203.0.113.1');
      const refusedByGroup = request(app)
        .get('/rest')
        .set('Authorization', `Bearer ${bobs.token}`)
        .set('X-Forwarded-For', '203.0.113.1');
      expect((await refusedByAddress.set('X-Forwarded-For', '198.51.100.1')).status).toBe(403);
      expect((await refusedByScope).status).toBe(403);
      expect((await refusedByGroup).status).toBe(403);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await gate.tokens.get(info.id)).toMatchObject({ lastUsedAt: null, lastUsedIp: null });
      expect(await gate.tokens.get(bobs.info.id)).toMatchObject({ lastUsedAt: null });
      const passed = await request(app)
        .get('/rest')
        .set('Authorization', `Bearer ${token}`)
        .set('X-Forwarded-For', '203.0.113.7');
      expect(passed.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await gate.tokens.get(info.id)).toMatchObject({ lastUsedIp: '203.0.113.7' });
    });
  });
});

describe('createTokenGate options', () => {
  it.each([
    [{ ipAllowlsit: [] }, 'Unknown option `ipAllowlsit`'],
    [{ permissions: { useToken: [] } }, '`permissions.useToken`'],
    [{ permissions: { useTokens: 'admins' } }, '`permissions.useTokens`'],
    [{ ipAllowlist: ['10.0.0.0/8', 'x'] }, '`ipAllowlist[1]`'],
    [{ trustedProxies: ['10.0.0.300'] }, '`trustedProxies[0]`'],
    [{ tokenPrefix: 'Bad!' }, '`tokenPrefix`'],
    [{ store: {} }, '`store`'],
    [{ hasher: 'md5' }, '`hasher`'],
    [{ storeTimeoutMs: -1 }, '`storeTimeoutMs`'],
    [{ blockPasswordAuth: 'yes' }, '`blockPasswordAuth`'],
    [{ expiry: { maxDays: 1.5 } }, '`expiry.maxDays`'],
    [{ anonymous: 'allow' }, '`anonymous`'],
    [{ onEvent: 'log' }, '`onEvent`'],
    [{ identity: { jwt: { key: 'short' } } }, '`jwt.key`'],
    [{ expiry: { maxdays: 90 } }, 'Unknown option `expiry.maxdays`; did you mean `expiry.maxDays`?'],
    [{ throttle: { maxFailuresPerIP: 3 } }, 'did you mean `throttle.maxFailuresPerIp`?'],
    [{ throttle: { windowMS: 1000 } }, 'did you mean `throttle.windowMs`?'],
    [{ cache: { ttlMs: Number.NaN } }, '`cache.ttlMs`'],
    [{ cache: { ttl: 5000 } }, 'did you mean `cache.ttlMs`?'],
    [{ cache: { maxEntries: Number.POSITIVE_INFINITY } }, '`cache.maxEntries`'],
    [{ identity: { headr: 'x-user' } }, 'did you mean `identity.header`?'],
    [{ identity: { header: 'x user' } }, '`identity.header`'],
    [
      { identity: { jwt: { key: 'k'.repeat(32), algorithim: 'HS256' } } },
      'did you mean `identity.jwt.algorithm`?',
    ],
    [{ identity: { jwt: { key: 'k'.repeat(32), ttlSeconds: 0 } } }, '`identity.jwt.ttlSeconds`'],
    [{ hasher: sha256Hasher(), pepper: 'x' }, '`pepper`'],
    [{ pepper: '' }, '`pepper`'],
    [{ ipallowlist: [] }, 'did you mean `ipAllowlist`?'],
    [{ trustedProxy: [] }, 'did you mean `trustedProxies`?'],
    [{ blockPasswordAuthentication: true }, 'Unknown option `blockPasswordAuthentication`'],
    [{ permissions: { managOthers: [] } }, 'did you mean `permissions.manageOthers`?'],
    [{ reminders: { leadDay: [7] } }, 'did you mean `reminders.leadDays`?'],
    [{ reminders: { leadDays: [0] } }, '`reminders.leadDays[0]`'],
    [{ loginThrottle: { maxFailuresPerUser: 0 } }, '`loginThrottle.maxFailuresPerUser`'],
    [{ maxTokensPerUser: 0 }, '`maxTokensPerUser`'],
    [{ gitPrefixes: ['scm'] }, '`gitPrefixes[0]`'],
    [{ extraMethods: { PROPFIND: 'admin' } }, '`extraMethods.PROPFIND`'],
    [{ clientIpHeader: 'bad header' }, '`clientIpHeader`'],
    [{ groups: { alice: 'admins' } }, '`groups'],
  ])('throws at startup for %j, naming the option', (options, message) => {
    expect(() => createTokenGate(options as never)).toThrow(message);
  });

  it('still works when the onEvent listener throws', async () => {
    const gate = createTokenGate({
      onEvent: () => {
        throw new Error('broken sink');
      },
    });
    const app = echoApp(EXPRESS_VERSIONS[1]![1], gate.protect());
    expect((await request(app).get('/').set('Authorization', 'Bearer bbt_x')).status).toBe(401);
    await gate.close();
  });
});

describe('two gates sharing one Redis', () => {
  it('see a revocation made by the other within one second', async () => {
    const url = inject('redisUrl');
    const first = await openRedisStore(new Redis(url));
    const otherClient = new Redis(url);
    const second = new RedisTokenStore({ redis: otherClient, keyPrefix: first.keyPrefix });
    const gateA = createTokenGate({ store: first.store, cache: { ttlMs: 60_000 } });
    const gateB = createTokenGate({ store: second, cache: { ttlMs: 60_000 } });
    try {
      const appB = echoApp(EXPRESS_VERSIONS[1]![1], gateB.protect());
      const { token, info } = await gateA.tokens.create({ user: 'alice', name: 'shared', scope: 'read' });
      // Wait until B's revocation feed is up, then warm B's cache.
      for (let i = 0; i < 100 && !verifierOf(gateB.tokens).trusted; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect((await request(appB).get('/').set('Authorization', `Bearer ${token}`)).status).toBe(200);
      expect(verifierOf(gateB.tokens).cacheSize).toBe(1);
      const revokedAt = Date.now();
      await gateA.tokens.revoke(info.id);
      let status = 200;
      while (status === 200 && Date.now() - revokedAt < 1_000) {
        status = (await request(appB).get('/').set('Authorization', `Bearer ${token}`)).status;
      }
      expect(status).toBe(401);
      expect(Date.now() - revokedAt).toBeLessThan(1_000);
    } finally {
      await gateA.close();
      await gateB.close();
      otherClient.disconnect();
      await first.cleanup();
    }
  });
});

describe('misuse', () => {
  it('fails loudly when protect or router is mounted without being called', async () => {
    const gate = createTokenGate();
    const app = EXPRESS_VERSIONS[1]![1]();
    app.use('/a', gate.protect as never);
    app.use('/b', gate.router as never);
    const a = await request(app).get('/a');
    expect(a.status).toBe(500);
    expect(a.text).toContain('gate.protect()');
    expect((await request(app).get('/b')).text).toContain('gate.router()');
    await gate.close();
  });
});
