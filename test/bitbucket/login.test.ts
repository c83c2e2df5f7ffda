import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bitbucketLogin, bitbucketPasswordVerifier } from '../../lib/bitbucket/login.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { basic, EXPRESS_VERSIONS } from '../support/apps.js';
import { type BitbucketStandIn, startBitbucketStandIn } from '../support/bitbucket-stand-in.js';

let bitbucket: BitbucketStandIn;
beforeAll(async () => {
  bitbucket = await startBitbucketStandIn({
    adminToken: 'admin-http-token',
    groups: { alice: ['stash-users', 'developers', 'api-users', 'release'], bob: ['stash-users'] },
    passwords: {
      alice: 'correct horse',
      bob: 'battery staple',
      'John.Doe@corp': 'directory',
      locked: 'whatever',
    },
    slugs: { 'John.Doe@corp': 'john.doe_corp' },
    captcha: ['locked'],
  });
});
afterAll(async () => {
  await bitbucket.close();
});
beforeEach(() => {
  bitbucket.mode = 'ok';
  bitbucket.calls.length = 0;
});

describe.each(EXPRESS_VERSIONS)('bitbucketLogin on %s', (_name, makeApp) => {
  const appWith = (options: Partial<Parameters<typeof bitbucketLogin>[0]> = {}) => {
    const gate = createTokenGate();
    const app = makeApp();
    app.use('/tokens', bitbucketLogin({ baseUrl: bitbucket.baseUrl, ...options }), gate.router());
    return { app, gate };
  };

  it('logs a user in with the Bitbucket password and sets the principal', async () => {
    const { app, gate } = appWith();
    const res = await request(app)
      .post('/tokens')
      .set('Authorization', basic('ALICE', 'correct horse'))
      .send({ name: 'x', scope: 'read' });
    expect(res.status).toBe(201);
    expect(res.body.user).toBe('alice');
    expect(bitbucket.calls).toEqual(['GET /rest/api/1.0/users?filter=ALICE&limit=100']);
    await gate.close();
  });

  it('logs in a directory user whose slug differs from the name', async () => {
    const { app, gate } = appWith();
    const res = await request(app)
      .post('/tokens')
      .set('Authorization', basic('John.Doe@corp', 'directory'))
      .send({ name: 'x', scope: 'read' });
    expect(res.status).toBe(201);
    expect(res.body.user).toBe('John.Doe@corp');
    await gate.close();
  });

  it('says so when Bitbucket demands a CAPTCHA, instead of calling the password wrong', async () => {
    const { app, gate } = appWith();
    const res = await request(app).get('/tokens').set('Authorization', basic('locked', 'whatever'));
    expect(res.status).toBe(403);
    expect(res.body.errors[0].code).toBe('LOGIN_CAPTCHA_REQUIRED');
    expect(res.body.errors[0].message).toMatch(/CAPTCHA/);
    await gate.close();
  });

  it('throttles failed logins per address and user, and reports each as an event', async () => {
    const events: Array<{ type: string; code?: string; user?: string }> = [];
    const { app, gate } = appWith({
      throttle: { maxFailuresPerUser: 3, maxFailuresPerIp: 10 },
      onEvent: (e) => events.push(e),
    });
    for (let i = 0; i < 3; i++)
      expect(
        (
          await request(app)
            .get('/tokens')
            .set('Authorization', basic('alice', `guess ${i}`))
        ).status,
      ).toBe(401);
    const calls = bitbucket.calls.length;
    const blocked = await request(app).get('/tokens').set('Authorization', basic('alice', 'correct horse'));
    expect(blocked.status).toBe(429);
    expect(blocked.headers['retry-after']).toBeDefined();
    expect(bitbucket.calls.length).toBe(calls); // refused before Bitbucket is asked
    // Another user from the same address is not locked out by alice's failures.
    expect(
      (await request(app).get('/tokens').set('Authorization', basic('bob', 'battery staple'))).status,
    ).toBe(200);
    expect(events.filter((e) => e.code === 'PASSWORD_INVALID')).toHaveLength(3);
    expect(events.every((e) => e.type === 'auth.denied' && e.user === 'alice')).toBe(true);
    expect(JSON.stringify(events)).not.toContain('guess');
    await gate.close();
  });

  it('remembers a verified login, but never accepts another password from the cache', async () => {
    const { app, gate } = appWith();
    for (let i = 0; i < 3; i++)
      expect(
        (await request(app).get('/tokens').set('Authorization', basic('bob', 'battery staple'))).status,
      ).toBe(200);
    expect(bitbucket.calls).toHaveLength(1);
    const wrong = await request(app).get('/tokens').set('Authorization', basic('bob', 'battery stapler'));
    expect(wrong.status).toBe(401);
    expect(wrong.body.errors[0].code).toBe('PASSWORD_INVALID');
    expect(bitbucket.calls).toHaveLength(2);
    await gate.close();
  });

  it('refuses wrong passwords, missing credentials with 401, and tokens with 403', async () => {
    const { app, gate } = appWith();
    const wrong = await request(app).get('/tokens').set('Authorization', basic('alice', 'nope'));
    expect(wrong.status).toBe(401);
    expect(wrong.body.errors[0].code).toBe('PASSWORD_INVALID');
    const none = await request(app).get('/tokens');
    expect(none.status).toBe(401);
    expect(none.body.errors[0].code).toBe('CREDENTIALS_MISSING');
    // The management login takes passwords only: its challenge never advertises Bearer.
    expect(none.headers['www-authenticate']).toContain('Basic');
    expect(none.headers['www-authenticate']).not.toContain('Bearer');
    const token = (await gate.tokens.create({ user: 'alice', name: 'x', scope: 'write' })).token;
    const viaToken = await request(app)
      .post('/tokens')
      .set('Authorization', basic('alice', token))
      .send({ name: 'y', scope: 'read' });
    expect(viaToken.status).toBe(403);
    expect(viaToken.body.errors[0].code).toBe('TOKEN_CANNOT_MINT');
    await gate.close();
  });

  it('fails closed (503) when Bitbucket is down or hangs', async () => {
    const { app, gate } = appWith({ timeoutMs: 200 });
    bitbucket.mode = 'error';
    expect(
      (await request(app).get('/tokens').set('Authorization', basic('alice', 'correct horse'))).status,
    ).toBe(503);
    bitbucket.mode = 'hang';
    expect(
      (await request(app).get('/tokens').set('Authorization', basic('alice', 'correct horse'))).status,
    ).toBe(503);
    await gate.close();
  });

  it('refuses a 200 that names no user: it proves nothing about who logged in', async () => {
    const impostor = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ values: [] }));
    });
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    const verify = bitbucketPasswordVerifier({
      baseUrl: `http://127.0.0.1:${(impostor.address() as AddressInfo).port}`,
    });
    try {
      expect(await verify('alice', 'anything')).toBeNull();
    } finally {
      impostor.close();
    }
  });

  it('throws at startup on bad options', () => {
    expect(() => bitbucketLogin({ baseUrl: '' })).toThrow(/`baseUrl`/);
    expect(() => bitbucketLogin({ baseUrl: 'https://x', bcryptCost: 40 })).toThrow(/`bcryptCost`/);
  });
});
