import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { jwtVerify } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../lib/errors.js';
import { forwardTo } from '../../lib/forward/index.js';
import {
  type AuditEvent,
  bitbucketAccessTokens,
  bitbucketPasswordVerifier,
  createTokenGate,
  passwordLogin,
  type TokenGate,
} from '../../lib/index.js';
import { type BitbucketStandIn, startBitbucketStandIn } from '../support/bitbucket-stand-in.js';

const SECRET = 'a session secret of at least thirty-two bytes';
const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
const formIdOf = (html: string) => /name="formId" value="([^"]+)"/.exec(html)?.[1] ?? '';

describe('requiredHeaders names', () => {
  const gate = createTokenGate();
  const app = express();
  app.use('/tokens', gate.router({ principal: () => 'alice' }));
  afterAll(() => gate.close());

  it('refuses __proto__, constructor, prototype and any name that is not an RFC 9110 token, naming it', async () => {
    for (const name of [
      '__proto__',
      'constructor',
      'prototype',
      'Constructor',
      'x y',
      'x:y',
      'ü',
      '',
      '(x)',
    ]) {
      // Raw JSON: `__proto__` arrives as an own property, as from any client.
      const body = `{"name":"ci","scope":"read","requiredHeaders":{${JSON.stringify(name)}:"x"}}`;
      const res = await request(app).post('/tokens/').set('Content-Type', 'application/json').send(body);
      expect(res.status, name).toBe(400);
      expect(res.body.errors[0].message, name).toContain(`requiredHeaders.${name}`);
      await expect(
        gate.tokens.create({
          user: 'alice',
          name: 'ci',
          scope: 'read',
          requiredHeaders: JSON.parse(`{${JSON.stringify(name)}:"x"}`),
        }),
      ).rejects.toThrow(ValidationError);
    }
    expect(await gate.tokens.list('alice')).toEqual([]);
    // A real header name still works: the test can fail.
    const ok = await request(app)
      .post('/tokens/')
      .send({ name: 'ci', scope: 'read', requiredHeaders: { 'X-CI-Runner': 'build-7' } });
    expect(ok.status).toBe(201);
    expect(ok.body.requiredHeaders).toEqual({ 'x-ci-runner': 'build-7' });
  });
});

describe('identity header for names beyond Latin-1', () => {
  let upstream: Server;
  let upstreamUrl: string;
  let seen: Record<string, string | string[] | undefined> = {};
  const key = randomBytes(32);
  const gate = createTokenGate({ identity: { jwt: { key } } });

  beforeAll(async () => {
    upstream = express()
      .use((req, res) => {
        seen = req.headers;
        res.json({ ok: true });
      })
      .listen(0, '127.0.0.1');
    await new Promise((r) => upstream.once('listening', r));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
    await gate.close();
  });

  it('sends 王伟 RFC 8187-encoded with a marker (no 500), Latin-1 names as they are, the plain name in the JWT', async () => {
    const app = express().use('/rest', gate.protect(), forwardTo(upstreamUrl));
    const cases: Array<[string, string]> = [
      ['王伟', "UTF-8''%E7%8E%8B%E4%BC%9F"],
      ['Сергей', "UTF-8''%D0%A1%D0%B5%D1%80%D0%B3%D0%B5%D0%B9"],
      ['J\u00FCrgen', 'J\u00FCrgen'],
      ['alice', 'alice'],
      ["UTF-8''alice", "UTF-8''UTF-8%27%27alice"],
      ["o'brien-王", "UTF-8''o%27brien-%E7%8E%8B"],
    ];
    for (const [user, header] of cases) {
      const { token } = await gate.tokens.create({ user, name: 'laptop', scope: 'read' });
      const res = await request(app).get('/rest/api/1.0/projects').set('Authorization', `Bearer ${token}`);
      expect(res.status, user).toBe(200);
      expect(Buffer.from(String(seen['x-forwarded-user']), 'latin1').toString('latin1'), user).toBe(header);
      if (header.startsWith("UTF-8''"))
        expect(decodeURIComponent(header.slice("UTF-8''".length)), user).toBe(user);
      const { payload } = await jwtVerify(String(seen['x-forwarded-user-jwt']), key);
      expect(payload.sub, user).toBe(user);
    }
  });
});

describe('token pages in access-token mode after a password login', () => {
  let bitbucket: BitbucketStandIn;
  let gate: TokenGate;
  let app: express.Express;
  const events: AuditEvent[] = [];

  beforeAll(async () => {
    bitbucket = await startBitbucketStandIn({
      adminToken: 'groups-token',
      groups: {},
      passwords: { alice: 'alice-pw', bob: 'bob-pw', admin: 'admin-pw' },
      accessTokens: {},
    });
    gate = createTokenGate({
      upstream: bitbucketAccessTokens({
        baseUrl: bitbucket.baseUrl,
        encryptionKeys: [{ id: 'k1', key: randomBytes(32) }],
      }),
      groups: { admin: ['admins'] },
      permissions: { manageOthers: ['admins'] },
      onEvent: (event) => events.push(event),
    });
    app = express();
    app.use(
      '/tokens',
      gate.pages({
        login: passwordLogin({ verify: bitbucketPasswordVerifier({ baseUrl: bitbucket.baseUrl }) }),
        session: { secret: SECRET, secure: false },
      }),
    );
    app.use('/rest', gate.protect(), forwardTo(bitbucket.baseUrl));
  });
  afterAll(async () => {
    await gate?.close();
    await bitbucket?.close();
  });

  async function loggedIn(user: string, password: string) {
    const agent = request.agent(app);
    const form = await agent.get('/tokens/login');
    const res = await agent
      .post('/tokens/login')
      .type('form')
      .send({ _csrf: csrfOf(form.text), username: user, password });
    expect(res.status).toBe(303);
    return agent;
  }

  async function create(agent: ReturnType<typeof request.agent>, extra: Record<string, string>) {
    const page = await agent.get('/tokens/');
    return agent
      .post('/tokens/create')
      .type('form')
      .send({
        _csrf: csrfOf(page.text),
        formId: formIdOf(page.text),
        name: 'laptop',
        scope: 'read',
        expiry: '30',
        ...extra,
      });
  }

  it('asks for the password again, mints with it, and the token works against Bitbucket', async () => {
    const agent = await loggedIn('alice', 'alice-pw');
    const page = await agent.get('/tokens/');
    expect(page.text).toContain('name="bitbucketPassword"');
    expect(page.text).toContain('autocomplete="current-password"');
    expect(page.text).toContain('name="bitbucketToken"');

    const missing = await create(agent, {});
    expect(missing.status).toBe(409);
    expect(missing.text).toContain('f-bitbucketPassword-error');

    const wrong = await create(agent, { bitbucketPassword: 'not-it' });
    expect(wrong.status).toBe(401);
    expect(wrong.text).not.toContain('not-it');
    expect(bitbucket.accessTokens.of('alice')).toHaveLength(0);

    const created = await create(agent, { bitbucketPassword: 'alice-pw' });
    expect(created.status).toBe(201);
    expect(created.text).not.toContain('alice-pw');
    const token = /id="new-token"[^>]*>\s*([^<\s]+)/.exec(created.text)?.[1] ?? '';
    expect(token).toMatch(/^bbt_/);
    expect(bitbucket.accessTokens.of('alice')).toHaveLength(1);
    const used = await request(app)
      .get('/rest/api/latest/application-properties')
      .set('Authorization', `Bearer ${token}`);
    expect(used.status).toBe(200);
    expect(used.headers['x-ausername']).toBe('alice');
    expect(JSON.stringify(events)).not.toContain('alice-pw');
  });

  it('asks a manager creating for someone else for a Bitbucket token of theirs, never a password', async () => {
    const agent = await loggedIn('admin', 'admin-pw');
    const manager = await agent.get('/tokens/manage');
    expect(manager.text).toContain('name="bitbucketToken"');
    const send = (extra: Record<string, string>) =>
      agent
        .post('/tokens/create')
        .type('form')
        .send({
          _csrf: csrfOf(manager.text),
          formId: formIdOf(manager.text),
          back: 'manage',
          user: 'bob',
          name: 'for bob',
          scope: 'read',
          expiry: '30',
          ...extra,
        });
    const missing = await send({});
    expect(missing.status).toBe(409);
    expect(missing.text).toContain('f-bitbucketToken-error');
    const withPassword = await send({ bitbucketPassword: 'admin-pw' });
    expect(withPassword.status).toBe(400);
    expect(withPassword.text).toContain('A password makes tokens of the one who logged in with it only');
    expect(await gate.tokens.list('bob')).toEqual([]);
  });

  it('links a Bitbucket token given in the form instead', async () => {
    const agent = await loggedIn('bob', 'bob-pw');
    const account = bitbucket.accessTokens.account('bob')!;
    const own = bitbucket.accessTokens.create(account, 'mine', ['REPO_READ', 'PROJECT_READ'], null);
    const created = await create(agent, { bitbucketToken: own.token });
    expect(created.status).toBe(201);
    expect(created.text).not.toContain(own.token);
  });
});
