import { createHash, randomBytes } from 'node:crypto';
import express, { type Express } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClientIpResolver } from '../../lib/client-address/resolver.js';
import {
  type AuditEvent,
  createTokenGate,
  MemoryTokenStore,
  passwordLogin,
  type TokenGate,
} from '../../lib/index.js';
import type { GrantHandler } from '../../lib/oauth/grants.js';
import { oauthConfigOf } from '../../lib/oauth/options.js';
import { OAuthServer } from '../../lib/oauth/server.js';

const SECRET = 'a session secret of at least thirty-two bytes';
const PASSWORDS: Record<string, string> = { alice: 'alice-pw', admin: 'admin-pw' };
const login = passwordLogin({
  verify: async (user, password) => (PASSWORDS[user] === password ? { name: user, slug: user } : null),
});
const REDIRECT = 'http://127.0.0.1:53682';

type Agent = ReturnType<typeof request.agent>;
const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

/** What git-credential-oauth 0.4.2 sends: 32 random bytes in standard base64 (`+`, `/`, `=`). */
function pkce() {
  let verifier = '';
  while (!/[+/]/.test(verifier)) verifier = randomBytes(32).toString('base64');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

describe('gate.oauth over HTTP', () => {
  let gate: TokenGate;
  let app: Express;
  let events: AuditEvent[];

  function setUp() {
    events = [];
    gate = createTokenGate({
      store: new MemoryTokenStore(),
      groups: { admin: ['admins'] },
      permissions: { createWriteTokens: ['admins'] },
      loginThrottle: { maxFailuresPerUser: 3 },
      onEvent: (event) => events.push(event),
    });
    app = express();
    app.use('/tokens', gate.pages({ login, session: { secret: SECRET, secure: false } }));
    app.use('/oauth', gate.oauth());
    app.get('/.well-known/oauth-authorization-server', gate.oauthMetadata());
  }
  beforeEach(setUp);
  afterEach(async () => {
    vi.useRealTimers();
    await gate.close();
  });

  async function loggedIn(user: string): Promise<Agent> {
    const agent = request.agent(app);
    const form = await agent.get('/tokens/login');
    const res = await agent
      .post('/tokens/login')
      .type('form')
      .send({ _csrf: csrfOf(form.text), username: user, password: PASSWORDS[user] });
    expect(res.status).toBe(303);
    return agent;
  }

  const authorizeQuery = (challenge: string, extra: Record<string, string> = {}) =>
    new URLSearchParams({
      client_id: 'git',
      redirect_uri: REDIRECT,
      response_type: 'code',
      state: 'aB+/cD==',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...extra,
    }).toString();

  /** Consent as `user`: the redirect URL the browser is sent to. */
  async function consent(
    agent: Agent,
    challenge: string,
    choice: Record<string, string> = {},
    extra: Record<string, string> = {},
  ): Promise<URL> {
    const page = await agent.get(`/tokens/oauth/authorize?${authorizeQuery(challenge, extra)}`);
    expect(page.status, page.text).toBe(200);
    const fields = Object.fromEntries(
      [...page.text.matchAll(/type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [
        m[1]!,
        m[2]!.replace(/&amp;/g, '&').replace(/&#x2F;/g, '/'),
      ]),
    );
    const lifetime = /<option value="(\d+)" selected/.exec(page.text)![1]!;
    const res = await agent
      .post('/tokens/oauth/authorize')
      .type('form')
      .send({ ...fields, grantScope: 'read', lifetime, decision: 'allow', resources: '', ...choice });
    expect(res.status, res.text).toBe(303);
    return new URL(res.headers['location'] as string);
  }

  const token = (form: Record<string, string>, basic: string | null = 'git:') => {
    const req = request(app).post('/oauth/token').type('form');
    if (basic !== null) req.set('Authorization', `Basic ${Buffer.from(basic).toString('base64')}`);
    return req.send(form);
  };

  async function signIn(user = 'alice') {
    const agent = await loggedIn(user);
    const { verifier, challenge } = pkce();
    const back = await consent(agent, challenge);
    const code = back.searchParams.get('code')!;
    const res = await token({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    expect(res.status, res.text).toBe(200);
    return { agent, body: res.body as Record<string, string> };
  }

  describe('options', () => {
    it('refuses typos, bad clients and a second call at startup, naming the option', () => {
      const other = createTokenGate();
      expect(() => other.oauth({ clientz: [] } as never)).toThrow(/did you mean `clients`/);
      expect(() => other.oauth({ clients: [{ id: 'a b' }] })).toThrow(/`clients\[0\].id`/);
      expect(() => other.oauth({ clients: [{ id: 'git' }, { id: 'git' }] })).toThrow(/repeats the client id/);
      expect(() => other.oauth({ clients: [{ id: 'x', redirectUris: ['http://app/cb'] }] })).toThrow(
        /`clients\[0\].redirectUris\[0\]` must not be plain http/,
      );
      expect(() => other.oauth({ accessTokenTtlMs: 1 })).toThrow(/`accessTokenTtlMs`/);
      expect(() => other.oauthMetadata()).toThrow(/needs `gate.oauth\(\)` first/);
      other.oauth();
      expect(() => other.oauth()).toThrow(/once/);
      void other.close();
    });
  });

  it('serves the RFC 8414 metadata at the host root and beside the endpoints', async () => {
    for (const path of [
      '/.well-known/oauth-authorization-server',
      '/oauth/.well-known/oauth-authorization-server',
    ]) {
      const res = await request(app).get(path).set('Host', 'git.example.com');
      expect(res.body).toMatchObject({
        issuer: 'http://git.example.com',
        authorization_endpoint: 'http://git.example.com/tokens/oauth/authorize',
        token_endpoint: 'http://git.example.com/oauth/token',
        device_authorization_endpoint: 'http://git.example.com/oauth/device_authorization',
        revocation_endpoint: 'http://git.example.com/oauth/revoke',
        code_challenge_methods_supported: ['S256'],
        grant_types_supported: [
          'authorization_code',
          'refresh_token',
          'urn:ietf:params:oauth:grant-type:device_code',
        ],
      });
    }
  });

  describe('authorization endpoint (consent page)', () => {
    it('shows an unknown client or a foreign redirect URI to the person, never redirecting', async () => {
      const agent = await loggedIn('alice');
      const { challenge } = pkce();
      for (const extra of [
        { client_id: 'evil' },
        { redirect_uri: 'https://evil.example/cb' },
        { redirect_uri: 'http://127.0.0.1.evil.example:80/' },
      ]) {
        const res = await agent.get(`/tokens/oauth/authorize?${authorizeQuery(challenge, extra)}`);
        expect(res.status).toBe(400);
        expect(res.headers['location']).toBeUndefined();
      }
    });

    it('accepts loopback redirects on any port, with or without a path, on 127.0.0.1, [::1] and localhost', async () => {
      const agent = await loggedIn('alice');
      const { challenge } = pkce();
      for (const redirect_uri of [
        'http://127.0.0.1:1/',
        'http://[::1]:65000/cb',
        'http://localhost:8000/a/b',
      ])
        expect(
          (await agent.get(`/tokens/oauth/authorize?${authorizeQuery(challenge, { redirect_uri })}`)).status,
        ).toBe(200);
    });

    it('requires state and S256 PKCE, answering the client with invalid_request', async () => {
      const agent = await loggedIn('alice');
      const { challenge } = pkce();
      const cases: Array<[Record<string, string>, string]> = [
        [{ state: '' }, 'invalid_request'],
        [{ code_challenge_method: 'plain' }, 'invalid_request'],
        [{ code_challenge: 'short' }, 'invalid_request'],
        [{ response_type: 'token' }, 'unsupported_response_type'],
        [{ scope: 'admin' }, 'invalid_scope'],
      ];
      for (const [extra, error] of cases) {
        const res = await agent.get(`/tokens/oauth/authorize?${authorizeQuery(challenge, extra)}`);
        expect(res.status).toBe(303);
        const location = new URL(res.headers['location'] as string);
        expect(location.origin).toBe(REDIRECT);
        expect(location.searchParams.get('error')).toBe(error);
      }
    });

    it('sends a visitor to the login and, after it, back to the consent page', async () => {
      const agent = request.agent(app);
      const { challenge } = pkce();
      const first = await agent.get(`/tokens/oauth/authorize?${authorizeQuery(challenge)}`);
      expect(first.status).toBe(303);
      expect(first.headers['location']).toBe('../login');
      const form = await agent.get('/tokens/login');
      // The login page says why it is asked: git signs in, and the next page confirms.
      expect(form.text).toContain('Log in to let git or another tool sign in with an API token');
      const res = await agent
        .post('/tokens/login')
        .type('form')
        .send({ _csrf: csrfOf(form.text), username: 'alice', password: 'alice-pw' });
      expect(res.headers['location']).toBe(`./oauth/authorize?${authorizeQuery(challenge)}`);
      const page = await agent.get(`/tokens/${String(res.headers['location']).slice(2)}`);
      expect(page.text).toContain('Sign in to Git?');
      // The form may post here and on to the loopback address only; the page cannot be framed.
      expect(page.headers['content-security-policy']).toContain(`form-action 'self' ${REDIRECT}`);
      expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    });

    it('refuses a consent posted cross-site or without the CSRF token', async () => {
      const agent = await loggedIn('alice');
      const { challenge } = pkce();
      const body = {
        client_id: 'git',
        redirect_uri: REDIRECT,
        state: 's',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        scope: '',
        grantScope: 'read',
        lifetime: '28800000',
        decision: 'allow',
      };
      const page = await agent.get(`/tokens/oauth/authorize?${authorizeQuery(challenge)}`);
      const crossSite = await agent
        .post('/tokens/oauth/authorize')
        .set('Sec-Fetch-Site', 'cross-site')
        .type('form')
        .send({ ...body, _csrf: csrfOf(page.text) });
      expect(crossSite.status).toBe(403);
      const noToken = await agent.post('/tokens/oauth/authorize').type('form').send(body);
      expect(noToken.status).toBe(403);
      expect(noToken.headers['location']).toBeUndefined();
    });

    it('tells the client access_denied when the person denies', async () => {
      const agent = await loggedIn('alice');
      const back = await consent(agent, pkce().challenge, { decision: 'deny' });
      expect(back.searchParams.get('error')).toBe('access_denied');
      expect(back.searchParams.get('state')).toBe('aB+/cD==');
      expect(back.searchParams.get('code')).toBeNull();
    });

    it('offers write only to those who may create write tokens', async () => {
      const alice = await loggedIn('alice');
      const { challenge } = pkce();
      const page = await alice.get(`/tokens/oauth/authorize?${authorizeQuery(challenge)}`);
      expect(page.text).not.toContain('value="write"');
      const res = await alice
        .post('/tokens/oauth/authorize')
        .type('form')
        .send({
          _csrf: csrfOf(page.text),
          client_id: 'git',
          redirect_uri: REDIRECT,
          state: 's',
          code_challenge: challenge,
          code_challenge_method: 'S256',
          grantScope: 'write',
          lifetime: '28800000',
          decision: 'allow',
        });
      expect(res.status).toBe(403);
      const admin = await loggedIn('admin');
      expect((await admin.get(`/tokens/oauth/authorize?${authorizeQuery(challenge)}`)).text).toContain(
        'value="write"',
      );
    });
  });

  describe('token endpoint', () => {
    it('issues an ordinary API token with Basic `git:` and a base64 verifier, marked as signed in by git', async () => {
      const { body } = await signIn();
      expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 28_800, scope: 'read' });
      expect(body['refresh_token']).toMatch(/^bbtr_[0-9a-f]{32}\./);
      const info = await gate.tokens.verify(body['access_token']!);
      expect(info).toMatchObject({ user: 'alice', scope: 'read', origin: { via: 'oauth', client: 'git' } });
      expect(Date.parse(info!.expiresAt!) - Date.now()).toBeGreaterThan(28_700_000);
      const created = events.find((e) => e.type === 'token.created');
      expect(created).toMatchObject({ user: 'alice', actor: 'alice' });
      // No secret of the flow in any event.
      const seen = JSON.stringify(events);
      expect(seen).not.toContain(body['access_token']!.slice(4));
      expect(seen).not.toContain(body['refresh_token']!.split('.')[1]);
    });

    it('takes the client id in the form too, and keeps the resource restriction chosen', async () => {
      const agent = await loggedIn('alice');
      const { verifier, challenge } = pkce();
      const back = await consent(agent, challenge, { resources: 'OPS/deploy' });
      const res = await token(
        {
          grant_type: 'authorization_code',
          code: back.searchParams.get('code')!,
          redirect_uri: REDIRECT,
          code_verifier: verifier,
          client_id: 'git',
        },
        null,
      );
      expect(res.status).toBe(200);
      expect((await gate.tokens.verify(res.body.access_token))?.resources).toEqual(['OPS/deploy']);
    });

    it('spends a code once: reused, with a wrong verifier, a wrong redirect or after 60 s it is invalid_grant', async () => {
      const agent = await loggedIn('alice');
      const exchange = async (change: Record<string, string> = {}, at?: number) => {
        const { verifier, challenge } = pkce();
        const code = (await consent(agent, challenge)).searchParams.get('code')!;
        const form = {
          grant_type: 'authorization_code',
          code,
          redirect_uri: REDIRECT,
          code_verifier: verifier,
          ...change,
        };
        const spy = at === undefined ? undefined : vi.spyOn(Date, 'now').mockReturnValue(at);
        try {
          const first = await token(form);
          spy?.mockRestore();
          const second = await token({ ...form, code_verifier: verifier, redirect_uri: REDIRECT });
          return [first, second];
        } finally {
          spy?.mockRestore();
        }
      };
      const [ok, reused] = await exchange();
      expect(ok!.status).toBe(200);
      expect(reused!.body).toMatchObject({ error: 'invalid_grant' });
      expect(
        events.filter((e) => e.type === 'auth.denied' && e.code === 'OAUTH_GRANT_REPLAYED'),
      ).toMatchObject([{ user: 'alice', path: '/oauth/token', clientIp: '127.0.0.1' }]);
      // A replayed code was intercepted: what it gave is revoked (RFC 6749 §4.1.2).
      expect(await gate.tokens.verify(ok!.body.access_token)).toBeNull();
      expect(
        (await token({ grant_type: 'refresh_token', refresh_token: ok!.body.refresh_token })).body.error,
      ).toBe('invalid_grant');
      for (const change of [
        { code_verifier: pkce().verifier },
        { code_verifier: 'x'.repeat(200) },
        { redirect_uri: 'http://127.0.0.1:1' },
      ]) {
        const [wrong, afterwards] = await exchange(change);
        expect(wrong!.status).toBe(400);
        expect(wrong!.body.error).toBe('invalid_grant');
        expect(afterwards!.body.error).toBe('invalid_grant'); // the right verifier comes too late
      }
      const [late] = await exchange({}, Date.now() + 61_000);
      expect(late!.body).toMatchObject({ error: 'invalid_grant' });
    });

    it('refuses client secrets, unknown clients, bodies that are not forms, repeated and unknown grants', async () => {
      expect((await token({ grant_type: 'authorization_code' }, 'git:secret')).body.error).toBe(
        'invalid_client',
      );
      const unknown = await token({ grant_type: 'authorization_code' }, 'evil:');
      expect(unknown.status).toBe(401);
      expect(unknown.headers['www-authenticate']).toBe('Basic realm="oauth"');
      expect((await token({ grant_type: 'authorization_code' }, null)).status).toBe(401);
      const json = await request(app).post('/oauth/token').send({ grant_type: 'authorization_code' });
      expect(json.body.error).toBe('invalid_request');
      const repeated = await request(app)
        .post('/oauth/token')
        .type('form')
        .send('grant_type=refresh_token&grant_type=authorization_code&client_id=git');
      expect(repeated.body.error).toBe('invalid_request');
      expect((await token({ grant_type: 'password' })).body.error).toBe('unsupported_grant_type');
      expect((await request(app).get('/oauth/token')).status).toBe(400);
      expect((await token({ grant_type: 'password' })).headers['cache-control']).toBe('no-store');
    });
  });

  describe('refresh tokens', () => {
    it('rotate on use; a reused one revokes the whole family and its access token', async () => {
      const { body } = await signIn();
      const first = await token({ grant_type: 'refresh_token', refresh_token: body['refresh_token']! });
      expect(first.status, first.text).toBe(200);
      expect(first.body.refresh_token).not.toBe(body['refresh_token']);
      // The old access token was replaced: one token per sign-in on My tokens.
      expect(await gate.tokens.verify(body['access_token']!)).toBeNull();
      expect((await gate.tokens.list('alice')).filter((t) => t.origin?.via === 'oauth')).toHaveLength(1);
      const reuse = await token({ grant_type: 'refresh_token', refresh_token: body['refresh_token']! });
      expect(reuse.body).toMatchObject({ error: 'invalid_grant' });
      expect(
        events.filter((e) => e.type === 'auth.denied' && e.code === 'OAUTH_GRANT_REPLAYED'),
      ).toMatchObject([{ user: 'alice', method: 'POST', path: '/oauth/token' }]);
      expect(await gate.tokens.verify(first.body.access_token)).toBeNull();
      const after = await token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
      expect(after.body).toMatchObject({ error: 'invalid_grant' });
    });

    it('die with revokeAll, and with their access token revoked on My tokens', async () => {
      const a = await signIn();
      const b = await signIn();
      const info = await gate.tokens.verify(a.body['access_token']!);
      await gate.tokens.revoke(info!.id);
      expect(
        (await token({ grant_type: 'refresh_token', refresh_token: a.body['refresh_token']! })).body.error,
      ).toBe('invalid_grant');
      await gate.tokens.revokeAll({ user: 'alice' });
      expect(
        (await token({ grant_type: 'refresh_token', refresh_token: b.body['refresh_token']! })).body.error,
      ).toBe('invalid_grant');
      // A sign-in after the revocation works again.
      const c = await signIn();
      expect(
        (await token({ grant_type: 'refresh_token', refresh_token: c.body['refresh_token']! })).status,
      ).toBe(200);
    });

    it('die with revokeAll even when their access token had already expired', async () => {
      // Every clock of the gate on a fake Date, from its creation on.
      await gate.close();
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      setUp();
      const { body } = await signIn();
      vi.setSystemTime(Date.now() + 9 * 3_600_000); // the access token is gone, the refresh token lives
      await gate.tokens.revokeAll({ user: 'alice' });
      expect(
        (await token({ grant_type: 'refresh_token', refresh_token: body['refresh_token']! })).body.error,
      ).toBe('invalid_grant');
      vi.setSystemTime(Date.now() + 1_000);
      const again = await signIn();
      vi.setSystemTime(Date.now() + 9 * 3_600_000);
      const refreshed = await token({
        grant_type: 'refresh_token',
        refresh_token: again.body['refresh_token']!,
      });
      expect(refreshed.status, refreshed.text).toBe(200);
    });

    it('end after their idle lifetime', async () => {
      const { body } = await signIn();
      const spy = vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 7 * 86_400_000 + 1_000);
      try {
        expect(
          (await token({ grant_type: 'refresh_token', refresh_token: body['refresh_token']! })).body.error,
        ).toBe('invalid_grant');
      } finally {
        spy.mockRestore();
      }
    });

    it('cannot widen the scope, and refuses another client', async () => {
      const { body } = await signIn();
      expect(
        (await token({ grant_type: 'refresh_token', refresh_token: body['refresh_token']!, scope: 'write' }))
          .body.error,
      ).toBe('invalid_scope');
    });
  });

  describe('revocation endpoint (RFC 7009)', () => {
    it('revokes access and refresh tokens of the calling client, and answers 200 for anything else', async () => {
      const { body } = await signIn();
      const revoke = (value: string, client = 'git:') =>
        request(app)
          .post('/oauth/revoke')
          .set('Authorization', `Basic ${Buffer.from(client).toString('base64')}`)
          .type('form')
          .send({ token: value });
      expect((await revoke('bbt_nonsense')).status).toBe(200);
      const hand = await gate.tokens.create({ user: 'alice', name: 'by hand', scope: 'read' });
      expect((await revoke(hand.token)).status).toBe(200);
      expect(await gate.tokens.verify(hand.token)).not.toBeNull(); // not issued to this client
      expect((await revoke(body['refresh_token']!)).status).toBe(200);
      expect(await gate.tokens.verify(body['access_token']!)).toBeNull();
      expect(
        (await token({ grant_type: 'refresh_token', refresh_token: body['refresh_token']! })).body.error,
      ).toBe('invalid_grant');
      expect((await revoke('x', 'git:secret')).status).toBe(401);
    });
  });

  describe('device flow', () => {
    it('throttles guessed user codes like failed logins', async () => {
      const agent = await loggedIn('alice');
      const page = await agent.get('/tokens/device');
      expect(page.status).toBe(200);
      const csrf = csrfOf(page.text);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++)
        statuses.push(
          (await agent.post('/tokens/device').type('form').send({ _csrf: csrf, user_code: 'BCDF-GHJK' }))
            .status,
        );
      expect(statuses).toEqual([400, 400, 400, 429]);
      expect(events.filter((e) => e.type === 'auth.denied').length).toBeGreaterThanOrEqual(4);
    });

    it('tells a denied device access_denied, and an unknown one expired_token', async () => {
      const started = await request(app)
        .post('/oauth/device_authorization')
        .type('form')
        .send({ client_id: 'git' });
      expect(started.status).toBe(200);
      const agent = await loggedIn('alice');
      const page = await agent.get(`/tokens/device?user_code=${started.body.user_code}`);
      const csrf = csrfOf(page.text);
      const consentPage = await agent
        .post('/tokens/device')
        .type('form')
        .send({ _csrf: csrf, user_code: started.body.user_code });
      expect(consentPage.text).toContain('on another device');
      const denied = await agent
        .post('/tokens/device')
        .type('form')
        .send({ _csrf: csrf, user_code: started.body.user_code, decision: 'deny' });
      expect(denied.text).toContain('Request denied');
      const poll = (device_code: string) =>
        request(app).post('/oauth/token').type('form').send({
          grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
          device_code,
          client_id: 'git',
        });
      expect((await poll(started.body.device_code)).body.error).toBe('access_denied');
      expect((await poll(started.body.device_code)).body.error).toBe('expired_token');
      expect((await poll('nonsense')).body.error).toBe('expired_token');
    });
  });
});

describe('OAuthServer extra grants (the federation slot)', () => {
  it('dispatches an extra grant_type to its handler and lists it in the metadata', async () => {
    const gate = createTokenGate();
    const exchange: GrantHandler = async ({ form, clientIp }) => ({
      status: 200,
      body: { access_token: `for ${form.get('subject_token')} from ${clientIp}`, token_type: 'Bearer' },
    });
    const store = new MemoryTokenStore();
    const server = new OAuthServer(oauthConfigOf({}, { store, accessTokenMode: false, maxDays: undefined }), {
      tokens: gate.tokens,
      store,
      resolveClientIp: createClientIpResolver({}),
      extraGrants: new Map([['urn:ietf:params:oauth:grant-type:token-exchange', exchange]]),
    });
    const app = express().use('/oauth', server.router());
    const res = await request(app)
      .post('/oauth/token')
      .type('form')
      .send({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'jwt' });
    expect(res.body).toEqual({ access_token: 'for jwt from 127.0.0.1', token_type: 'Bearer' });
    const meta = await request(app).get('/oauth/.well-known/oauth-authorization-server');
    expect(meta.body.grant_types_supported).toContain('urn:ietf:params:oauth:grant-type:token-exchange');
    await gate.close();
  });
});
