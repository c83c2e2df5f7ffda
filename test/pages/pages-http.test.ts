import express, { type Express } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AuditEvent,
  createTokenGate,
  oidcLogin,
  type PagesOptions,
  passwordLogin,
  type TokenGate,
} from '../../lib/index.js';
import { SessionCodec } from '../../lib/pages/session.js';
import { EXPRESS_VERSIONS } from '../support/apps.js';

const SECRET = 'a session secret of at least thirty-two bytes';
const PASSWORDS: Record<string, string> = { alice: 'alice-pw', admin: 'admin-pw', eve: 'eve-pw' };
const login = passwordLogin({
  verify: async (user, password) => (PASSWORDS[user] === password ? { name: user, slug: user } : null),
});

type Agent = ReturnType<typeof request.agent>;

const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
const formIdOf = (html: string) => /name="formId" value="([^"]+)"/.exec(html)?.[1] ?? '';
const cookiesOf = (res: request.Response): string[] => {
  const header = res.headers['set-cookie'] as unknown;
  return Array.isArray(header) ? header : typeof header === 'string' ? [header] : [];
};

describe('gate.pages over HTTP', () => {
  let gate: TokenGate;
  let app: Express;
  let events: AuditEvent[];

  function mount(options: Partial<PagesOptions> = {}, path = '/tokens', target: Express = app) {
    target.use(path, gate.pages({ login, session: { secret: SECRET, secure: false }, ...options }));
  }

  async function logIn(agent: Agent, user: string, password = PASSWORDS[user]!, base = '/tokens') {
    const form = await agent.get(`${base}/login`);
    return agent
      .post(`${base}/login`)
      .type('form')
      .send({ _csrf: csrfOf(form.text), username: user, password });
  }

  /** A logged-in agent and the CSRF token of its session. */
  async function loggedIn(user: string): Promise<{ agent: Agent; csrf: string; page: string }> {
    const agent = request.agent(app);
    const res = await logIn(agent, user);
    expect(res.status).toBe(303);
    const page = await agent.get('/tokens/');
    return { agent, csrf: csrfOf(page.text), page: page.text };
  }

  beforeEach(() => {
    events = [];
    gate = createTokenGate({
      groups: { admin: ['admins'] },
      permissions: { createWriteTokens: ['admins'], manageOthers: ['admins'] },
      expiry: { maxDays: 90 },
      loginThrottle: { maxFailuresPerUser: 3 },
      onEvent: (event) => events.push(event),
    });
    app = express();
  });
  afterEach(() => gate.close());

  describe('options', () => {
    it('refuses a short secret, a typo, a missing or doubled login at startup', () => {
      const make = (options: unknown) => () => gate.pages(options as PagesOptions);
      expect(make({ login, session: { secret: 'short' } })).toThrow(
        /`session.secret` must be at least 32 bytes/,
      );
      expect(make({ login, sesion: { secret: SECRET } })).toThrow(
        /Unknown option `sesion`; did you mean `session`\?/,
      );
      expect(make({ login, session: { secret: SECRET, idleTimeout: 5 } })).toThrow(
        /did you mean `session.idleTimeoutMs`/,
      );
      expect(make({ session: { secret: SECRET } })).toThrow(/exactly one of `login`/);
      expect(make({ login, principal: () => 'x', session: { secret: SECRET } })).toThrow(
        /exactly one of `login`/,
      );
      expect(make({ login })).toThrow(/`session.secret` is required/);
      expect(make({ login: { kind: 'magic' }, session: { secret: SECRET } })).toThrow(
        /`login` must be made by/,
      );
      expect(make({ login, session: { secret: SECRET, sameSite: 'none' } })).toThrow(
        /`session.sameSite` must be one of/,
      );
      expect(make({ login, session: { secret: SECRET }, publicUrl: 'ftp://x' })).toThrow(/`publicUrl`/);
      expect(make({ login, session: { secret: SECRET }, cloneExample: '"; rm -rf /' })).toThrow(
        /`cloneExample`/,
      );
    });

    it('refuses plain-http or incomplete OpenID settings at startup', () => {
      const base = {
        issuer: 'https://id.example.com',
        clientId: 'c',
        redirectUri: 'https://git.example.com/tokens/login/callback',
      };
      expect(() => oidcLogin({ ...base, issuer: 'http://id.example.com' })).toThrow(/must be https/);
      expect(() => oidcLogin({ ...base, scopes: ['profile'] })).toThrow(/must include 'openid'/);
      expect(() => oidcLogin({ ...base, redirectUri: 'not a url' })).toThrow(
        /`redirectUri` must be an absolute URL/,
      );
      expect(() => oidcLogin({ ...base, clientID: 'x' } as never)).toThrow(/did you mean `clientId`/);
      expect(() => passwordLogin({ verify: 'no' } as never)).toThrow(/`verify` must be a function/);
    });
  });

  describe('headers', () => {
    it('sends a strict CSP with a nonce that the page uses, and the other security headers, on every page', async () => {
      mount();
      const { agent } = await loggedIn('alice');
      const anonymous = request(app);
      for (const [client, path] of [
        [anonymous, '/tokens/login'],
        [agent, '/tokens/'],
        [agent, '/tokens/no-such-page'],
        [agent, '/tokens/token/AAAAAAAAAAA'],
        [agent, '/tokens/manage'],
      ] as const) {
        const res = await client.get(path);
        const csp = String(res.headers['content-security-policy']);
        const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
        expect(nonce, path).toBeTruthy();
        expect(csp).toContain("frame-ancestors 'none'");
        expect(csp).toContain("default-src 'none'");
        expect(csp).not.toContain('unsafe');
        expect(res.text).toContain(`nonce="${nonce}"`);
        expect(res.text).not.toMatch(/<script(?![^>]*nonce=)/);
        expect(res.text).not.toMatch(/ on[a-z]+=/);
        expect(res.headers['referrer-policy']).toBe('no-referrer');
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['cache-control']).toBe('no-store');
        expect(res.headers['x-frame-options']).toBe('DENY');
      }
    });

    it('serves its stylesheet and script itself, cached for good under hashed names', async () => {
      mount();
      const page = await request(app).get('/tokens/login');
      const css = /href="\.\/(assets\/pages\.[\w-]+\.css)"/.exec(page.text)![1]!;
      const js = /src="\.\/(assets\/pages\.[\w-]+\.js)"/.exec(page.text)![1]!;
      const style = await request(app).get(`/tokens/${css}`);
      expect(style.headers['content-type']).toBe('text/css; charset=utf-8');
      expect(style.headers['cache-control']).toContain('immutable');
      expect(style.headers['x-content-type-options']).toBe('nosniff');
      expect((await request(app).get(`/tokens/${js}`)).headers['content-type']).toBe(
        'text/javascript; charset=utf-8',
      );
      expect((await request(app).get('/tokens/assets/pages.nothing.js')).status).toBe(404);
      expect(page.text).not.toMatch(/https?:\/\//);
    });
  });

  describe('mount paths and reverse proxies', () => {
    it('works under any mount path with relative links, and scopes its cookie to it', async () => {
      const inner = express.Router();
      inner.use('/inner', gate.pages({ login, session: { secret: SECRET, secure: false } }));
      app.use('/outer', inner);
      const bare = await request(app).get('/outer/inner?x=1');
      expect(bare.status).toBe(301);
      expect(bare.headers['location']).toBe('inner/?x=1');
      const agent = request.agent(app);
      expect((await agent.get('/outer/inner/')).headers['location']).toBe('./login');
      const form = await agent.get('/outer/inner/login');
      expect(form.text).toContain('action="./login"');
      expect(cookiesOf(form)[0]).toContain('Path=/outer/inner;');
      const res = await logIn(agent, 'alice', PASSWORDS['alice'], '/outer/inner');
      expect(res.headers['location']).toBe('./');
      expect(cookiesOf(res).join()).toMatch(
        /api_tokens_session=[^;]+; Path=\/outer\/inner; Max-Age=\d+; HttpOnly; SameSite=Lax/,
      );
      const page = await agent.get('/outer/inner/token/AAAAAAAAAAA');
      expect(page.text).toContain('href="../"');
    });

    it('uses the public URL behind a proxy with a path prefix: cookie path, origin, git and curl lines', async () => {
      mount({ publicUrl: 'https://git.example.com/bb/', session: { secret: SECRET } });
      const agent = request.agent(app);
      const form = await agent.get('/tokens/login');
      const cookie = cookiesOf(form)[0]!;
      expect(cookie).toMatch(
        /^__Secure-api_tokens_session_login=[^;]+; Path=\/bb\/tokens; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/,
      );
      // A Secure cookie over plain HTTP is not sent back by superagent: hand it over.
      const value = cookie.split(';')[0]!;
      const res = await request(app)
        .post('/tokens/login')
        .set('Cookie', value)
        .set('Origin', 'https://git.example.com')
        .type('form')
        .send({ _csrf: csrfOf(form.text), username: 'alice', password: PASSWORDS['alice'] });
      expect(res.status).toBe(303);
      const session = cookiesOf(res)
        .find((c) => c.startsWith('__Secure-api_tokens_session='))!
        .split(';')[0]!;
      const mine = await request(app).get('/tokens/').set('Cookie', session);
      const created = await request(app)
        .post('/tokens/create')
        .set('Cookie', session)
        .set('Origin', 'https://git.example.com')
        .type('form')
        .send({ _csrf: csrfOf(mine.text), name: 'behind a proxy', scope: 'read' });
      expect(created.status).toBe(201);
      expect(created.text).toContain('clone https://git.example.com/bb/scm/PROJECT/repo.git');
      expect(created.text).toContain('https://git.example.com/bb/rest/api/1.0/projects');
      const wrongOrigin = await request(app)
        .post('/tokens/create')
        .set('Cookie', session)
        .set('Origin', 'https://evil.example.com')
        .type('form')
        .send({ _csrf: csrfOf(mine.text), name: 'from elsewhere', scope: 'read' });
      expect(wrongOrigin.status).toBe(403);
    });
  });

  describe('password login', () => {
    it('refuses a wrong password (401, event), then throttles the user from this address (429, Retry-After)', async () => {
      mount();
      const agent = request.agent(app);
      for (let i = 0; i < 3; i++) {
        const res = await logIn(agent, 'alice', 'wrong');
        expect(res.status).toBe(401);
        expect(res.text).toContain('Wrong user name or password.');
        expect(res.text).toContain('value="alice"');
        expect(res.text).not.toContain('wrong');
      }
      const blocked = await logIn(agent, 'alice');
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      const codes = events.filter((e) => e.type === 'auth.denied').map((e) => (e as { code: string }).code);
      expect(codes).toEqual([
        'PASSWORD_INVALID',
        'PASSWORD_INVALID',
        'PASSWORD_INVALID',
        'TOO_MANY_ATTEMPTS',
      ]);
      expect(JSON.stringify(events)).not.toContain('alice-pw');
      // Another user from the same address is not blocked by alice's failures.
      expect((await logIn(agent, 'admin')).status).toBe(303);
    });

    it('refuses a login form without its login cookie or with a wrong token (login CSRF)', async () => {
      mount();
      const form = await request(app).get('/tokens/login');
      const noCookie = await request(app)
        .post('/tokens/login')
        .type('form')
        .send({ _csrf: csrfOf(form.text), username: 'alice', password: PASSWORDS['alice'] });
      expect(noCookie.status).toBe(403);
      const agent = request.agent(app);
      await agent.get('/tokens/login');
      const wrong = await agent
        .post('/tokens/login')
        .type('form')
        .send({ _csrf: 'x'.repeat(43), username: 'alice', password: 'alice-pw' });
      expect(wrong.status).toBe(403);
      expect(events.filter((e) => e.type === 'auth.denied' && e.code === 'CSRF_REJECTED')).toHaveLength(2);
    });

    it('starts a new session id at every login and ends it at logout (a replayed cookie is refused)', async () => {
      mount();
      const { agent, csrf } = await loggedIn('alice');
      const cookie = (await agent.get('/tokens/')).request.cookies;
      const out = await agent.post('/tokens/logout').type('form').send({ _csrf: csrf });
      expect(out.status).toBe(303);
      expect(out.headers['location']).toBe('./login?done=logged-out');
      expect(cookiesOf(out).join()).toMatch(/api_tokens_session=; Path=\/tokens; Max-Age=0/);
      const replayed = await request(app).get('/tokens/').set('Cookie', cookie);
      expect(replayed.status).toBe(303);
      expect(replayed.headers['location']).toBe('./login');
    });
  });

  describe('session', () => {
    const sealed = async (now: number, options: { maxAgeMs?: number } = {}) => {
      const codec = new SessionCodec({ secret: SECRET, ...options }, () => now);
      return `api_tokens_session=${await codec.seal(codec.start('alice', 'password'))}`;
    };

    it('accepts a fresh session and refreshes its idle timer when due', async () => {
      mount();
      const fresh = await request(app)
        .get('/tokens/')
        .set('Cookie', await sealed(Date.now()));
      expect(fresh.status).toBe(200);
      const busy = await request(app)
        .get('/tokens/')
        .set('Cookie', await sealed(Date.now() - 120_000));
      expect(busy.status).toBe(200);
      expect(cookiesOf(busy).join()).toMatch(
        /api_tokens_session=[^;]+; Path=\/tokens; Max-Age=\d+; HttpOnly/,
      );
    });

    it('ends a session idle too long, one past its absolute lifetime, and forged or tampered ones', async () => {
      mount();
      const idle = await request(app)
        .get('/tokens/')
        .set('Cookie', await sealed(Date.now() - 31 * 60_000));
      expect(idle.headers['location']).toBe('./login');
      const old = await request(app)
        .get('/tokens/')
        .set('Cookie', await sealed(Date.now() - 9 * 3_600_000));
      expect(old.headers['location']).toBe('./login');
      const other = new SessionCodec({ secret: 'another secret of thirty-two bytes or more' });
      const forged = `api_tokens_session=${await other.seal(other.start('admin', 'password'))}`;
      expect((await request(app).get('/tokens/').set('Cookie', forged)).headers['location']).toBe('./login');
      const good = await sealed(Date.now());
      const tampered = `${good.slice(0, -5)}${good.slice(-5) === 'AAAAA' ? 'BBBBB' : 'AAAAA'}`;
      expect((await request(app).get('/tokens/').set('Cookie', tampered)).headers['location']).toBe(
        './login',
      );
      expect((await request(app).get('/tokens/').set('Cookie', 'api_tokens_session=garbage')).status).toBe(
        303,
      );
      // A form sent after the session ended is a 401, reported.
      const late = await request(app)
        .post('/tokens/create')
        .set('Cookie', 'api_tokens_session=garbage')
        .type('form')
        .send({ name: 'x' });
      expect(late.status).toBe(401);
      expect(late.text).toContain('Your session has ended');
    });

    it('opens sessions sealed with an older key while the keys rotate', async () => {
      mount({ session: { secret: ['a new secret of thirty-two bytes or more', SECRET], secure: false } });
      expect(
        (
          await request(app)
            .get('/tokens/')
            .set('Cookie', await sealed(Date.now()))
        ).status,
      ).toBe(200);
    });
  });

  describe('CSRF and origin checks', () => {
    it('refuses state-changing forms without the session’s token or from another origin', async () => {
      mount();
      const { agent, csrf } = await loggedIn('alice');
      const other = await loggedIn('eve');
      const post = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
        agent
          .post('/tokens/create')
          .set(headers)
          .type('form')
          .send({ name: 'csrf test', scope: 'read', ...fields });
      expect((await post({})).status).toBe(403);
      expect((await post({ _csrf: 'A'.repeat(43) })).status).toBe(403);
      expect((await post({ _csrf: other.csrf })).status).toBe(403);
      expect((await post({ _csrf: csrf }, { Origin: 'https://evil.example.com' })).status).toBe(403);
      expect((await post({ _csrf: csrf }, { 'Sec-Fetch-Site': 'same-site' })).status).toBe(403);
      expect((await post({ _csrf: csrf }, { 'Sec-Fetch-Site': 'cross-site', Origin: 'null' })).status).toBe(
        403,
      );
      expect((await post({ _csrf: csrf }, { Origin: 'null' })).status).toBe(403);
      expect(await gate.tokens.list('alice')).toHaveLength(0);
      expect(events.filter((e) => e.type === 'auth.denied' && e.code === 'CSRF_REJECTED')).toHaveLength(7);
      // What Chromium sends for our own form under no-referrer, and what a same-origin Origin says.
      expect((await post({ _csrf: csrf }, { 'Sec-Fetch-Site': 'same-origin', Origin: 'null' })).status).toBe(
        201,
      );
      expect(
        (await post({ _csrf: csrf, name: 'second' }, { Host: 'pages.test', Origin: 'http://pages.test' }))
          .status,
      ).toBe(201);
      expect(
        (await post({ _csrf: csrf, name: 'third' }, { Host: 'pages.test', Origin: 'http://other.test' }))
          .status,
      ).toBe(403);
    });
  });

  describe('creating', () => {
    it('shows the token once, no-store, never in a URL or an event', async () => {
      mount();
      const { agent, csrf, page } = await loggedIn('alice');
      const res = await agent
        .post('/tokens/create')
        .type('form')
        .send({ _csrf: csrf, formId: formIdOf(page), name: 'laptop', scope: 'read', expiry: '30' });
      expect(res.status).toBe(201);
      expect(res.headers['cache-control']).toBe('no-store');
      const token = /<code id="new-token">([^<]+)<\/code>/.exec(res.text)![1]!;
      expect(token).toMatch(/^bbt_/);
      expect(res.text).toContain(
        `git -c http.extraHeader=&quot;Authorization: Bearer ${token}&quot; clone http://127.0.0.1:`,
      );
      expect(JSON.stringify(events)).not.toContain(token.slice(16));
      expect(events.filter((e) => e.type === 'token.created')).toHaveLength(1);
      const list = await agent.get('/tokens/');
      expect(list.text).not.toContain(token.slice(16));
      const [info] = await gate.tokens.list('alice');
      expect(Date.parse(info!.expiresAt!) - Date.now()).toBeGreaterThan(29 * 86_400_000);
      expect(await gate.tokens.verify(token)).not.toBeNull();
    });

    it('renders names as text', async () => {
      mount();
      const { agent, csrf } = await loggedIn('alice');
      const name = '<script>alert(1)</script>"\'><img src=x onerror=alert(2)>';
      await agent.post('/tokens/create').type('form').send({ _csrf: csrf, name, scope: 'read' });
      for (const path of ['/tokens/', `/tokens/token/${(await gate.tokens.list('alice'))[0]!.id}`]) {
        const html = (await agent.get(path)).text;
        expect(html).toContain('&lt;script>alert(1)&lt;/script>&quot;');
        expect(html).not.toContain('<script>alert');
        expect(html).not.toContain('<img src=x');
      }
    });

    it('answers every bad field with a 400 that names it, and makes no token', async () => {
      mount();
      const { agent, csrf } = await loggedIn('alice');
      const bad: Array<[Record<string, string>, RegExp]> = [
        [{ name: '' }, /`name` must be 1 to 100 characters/],
        [{ name: 'x'.repeat(101) }, /`name` must be 1 to 100 characters/],
        [{ name: 'tab\there' }, /must not contain control characters/],
        [{ name: 'ok', scope: 'admin' }, /`scope` must be/],
        [{ name: 'ok', expiry: '1000' }, /Choose one of the offered expiry times/],
        [{ name: 'ok', expiry: 'never' }, /Choose one of the offered expiry times/],
        [{ name: 'ok', expiry: 'date', expiryDate: '2020-01-01' }, /must be today or later/],
        [{ name: 'ok', expiry: 'date', expiryDate: '2999-01-01' }, /may be at most/],
        [{ name: 'ok', expiry: 'date', expiryDate: '2030-02-30' }, /does not exist/],
        [{ name: 'ok', allowedIps: '10.0.0.7/8' }, /10\.0\.0\.0\/8/],
        [{ name: 'ok', requiredHeaders: 'no colon here' }, /Name: value/],
        [{ name: 'ok', requiredHeaders: 'Authorization: x' }, /requiredHeaders/],
        [{ name: 'ok', resources: 'PROJ/a/b/c' }, /resources/],
      ];
      for (const [fields, message] of bad) {
        const res = await agent
          .post('/tokens/create')
          .type('form')
          .send({ _csrf: csrf, scope: 'read', ...fields });
        expect(res.status, JSON.stringify(fields)).toBe(400);
        expect(res.text, JSON.stringify(fields)).toMatch(message);
      }
      const named = await agent
        .post('/tokens/create')
        .type('form')
        .send({ _csrf: csrf, scope: 'read', name: '' });
      expect(named.text).toMatch(/aria-invalid="true" aria-describedby="f-name-hint f-name-error"/);
      expect(await gate.tokens.list('alice')).toHaveLength(0);
    });

    it('refuses hand-made requests: unknown, repeated or oversized fields, JSON, other users, write scope', async () => {
      mount();
      const { agent, csrf } = await loggedIn('alice');
      const form = (body: string) => agent.post('/tokens/create').type('form').send(body);
      const unknown = await form(`_csrf=${csrf}&name=x&scope=read&isAdmin=true`);
      expect(unknown.status).toBe(400);
      expect(unknown.text).toContain('Unknown field `isAdmin`');
      expect((await form(`_csrf=${csrf}&name=x&name=y&scope=read`)).status).toBe(400);
      expect((await form(`_csrf=${csrf}&name=${'x'.repeat(40_000)}`)).status).toBe(413);
      expect(
        (await form(`_csrf=${csrf}&${Array.from({ length: 100 }, (_, i) => `f${i}=1`).join('&')}`)).status,
      ).toBeGreaterThanOrEqual(400);
      const json = await agent.post('/tokens/create').send({ _csrf: csrf, name: 'x', scope: 'read' });
      expect(json.status).toBe(400);
      const forOthers = await form(`_csrf=${csrf}&name=x&scope=read&user=admin`);
      expect(forOthers.status).toBe(403);
      const write = await form(`_csrf=${csrf}&name=x&scope=write`);
      expect(write.status).toBe(403);
      expect(write.text).toContain('write scope');
      expect(await gate.tokens.list('alice')).toHaveLength(0);
      expect(await gate.tokens.list('admin')).toHaveLength(0);
    });
  });

  describe('every form endpoint', () => {
    it('answers oversized, repeated, unknown and non-form bodies with a 4xx and changes nothing', async () => {
      mount();
      const { info } = await gate.tokens.create({ user: 'admin', name: 'kept', scope: 'read' });
      const { agent, csrf } = await loggedIn('admin');
      const endpoints = [
        '/tokens/create',
        `/tokens/token/${info.id}/update`,
        `/tokens/token/${info.id}/rotate`,
        `/tokens/token/${info.id}/revoke`,
        '/tokens/manage/revoke-all',
        '/tokens/logout',
        '/tokens/login',
      ];
      for (const path of endpoints) {
        const big = await agent
          .post(path)
          .type('form')
          .send(`_csrf=${csrf}&name=${'x'.repeat(40_000)}`);
        expect(big.status, `${path} oversized`).toBe(413);
        const repeated = await agent.post(path).type('form').send(`_csrf=${csrf}&_csrf=${csrf}&confirm=yes`);
        expect(repeated.status, `${path} repeated`).toBe(400);
        const unknown = await agent
          .post(path)
          .type('form')
          .send(`_csrf=${csrf}&confirm=yes&__proto__=x&constructor=y`);
        expect(unknown.status, `${path} unknown`).toBe(400);
        const json = await agent.post(path).send({ _csrf: csrf, confirm: 'yes' });
        expect(json.status, `${path} JSON`).toBe(400);
        const malformed = await agent.post(path).type('form').send('_csrf=%E0%A4%A&confirm=yes');
        expect(malformed.status, `${path} malformed`).toBeGreaterThanOrEqual(400);
        expect(malformed.status, `${path} malformed`).toBeLessThan(500);
        expect(big.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      }
      expect((await gate.tokens.list('admin')).map((t) => t.name)).toEqual(['kept']);
      // Still logged in: none of that ended the session.
      expect((await agent.get('/tokens/')).status).toBe(200);
    });

    it('refuses other methods on the pages with a 404 page', async () => {
      mount();
      const { agent } = await loggedIn('admin');
      for (const method of ['put', 'delete', 'patch'] as const) {
        const res = await agent[method]('/tokens/create');
        expect(res.status).toBe(404);
        expect(res.headers['content-type']).toContain('text/html');
      }
    });
  });

  describe('a token’s routes', () => {
    it('answer 404 for unknown, malformed and other users’ ids, exactly alike', async () => {
      mount();
      const theirs = await gate.tokens.create({ user: 'eve', name: 'eve’s', scope: 'read' });
      const { agent, csrf } = await loggedIn('alice');
      for (const id of [theirs.info.id, 'AAAAAAAAAAA', 'not-an-id', '..%2F..%2Fetc', `${theirs.info.id}x`]) {
        const get = await agent.get(`/tokens/token/${id}`);
        expect(get.status, id).toBe(404);
        for (const action of ['update', 'rotate', 'revoke']) {
          const res = await agent
            .post(`/tokens/token/${id}/${action}`)
            .type('form')
            .send({ _csrf: csrf, ...(action === 'update' ? { name: 'mine now' } : { confirm: 'yes' }) });
          expect(res.status, `${action} ${id}`).toBe(404);
          expect(res.text).toContain('No such token.');
        }
      }
      expect(await gate.tokens.get(theirs.info.id)).toMatchObject({ name: 'eve’s' });
    });

    it('rename and restrictions: only what changed is reported; a bad value is a 400 naming it', async () => {
      mount();
      const { info } = await gate.tokens.create({ user: 'alice', name: 'old', scope: 'read' });
      const { agent, csrf } = await loggedIn('alice');
      const ok = await agent
        .post(`/tokens/token/${info.id}/update`)
        .type('form')
        .send({ _csrf: csrf, name: 'new' });
      expect(ok.status).toBe(303);
      expect(ok.headers['location']).toBe(`../../token/${info.id}?done=saved`);
      expect(
        events.filter((e) => e.type === 'token.updated').map((e) => (e as { fields?: string[] }).fields),
      ).toEqual([['name']]);
      const bad = await agent
        .post(`/tokens/token/${info.id}/update`)
        .type('form')
        .send({ _csrf: csrf, name: 'new', allowedIps: 'not an address' });
      expect(bad.status).toBe(400);
      expect(bad.text).toContain('allowedIps');
    });

    it('asks before revoking or rotating, and then does it', async () => {
      mount();
      const { info } = await gate.tokens.create({ user: 'alice', name: 'going', scope: 'read' });
      const { agent, csrf } = await loggedIn('alice');
      const ask = await agent.post(`/tokens/token/${info.id}/revoke`).type('form').send({ _csrf: csrf });
      expect(ask.status).toBe(200);
      expect(ask.text).toContain('Revoke the token “going”?');
      expect(await gate.tokens.get(info.id)).not.toBeNull();
      const rotateAsk = await agent
        .post(`/tokens/token/${info.id}/rotate`)
        .type('form')
        .send({ _csrf: csrf, graceMs: '0' });
      expect(rotateAsk.text).toContain('stops working at once');
      const badGrace = await agent
        .post(`/tokens/token/${info.id}/rotate`)
        .type('form')
        .send({ _csrf: csrf, graceMs: '-1', confirm: 'yes' });
      expect(badGrace.status).toBe(400);
      const rotated = await agent
        .post(`/tokens/token/${info.id}/rotate`)
        .type('form')
        .send({ _csrf: csrf, graceMs: '0', confirm: 'yes' });
      expect(rotated.status).toBe(201);
      expect(rotated.text).toContain('The old token was revoked.');
      const [fresh] = await gate.tokens.list('alice');
      expect(fresh!.id).not.toBe(info.id);
      const done = await agent
        .post(`/tokens/token/${fresh!.id}/revoke`)
        .type('form')
        .send({ _csrf: csrf, confirm: 'yes' });
      expect(done.status).toBe(303);
      expect(done.headers['location']).toBe('../../?done=revoked');
      expect(await gate.tokens.list('alice')).toHaveLength(0);
    });
  });

  describe('token manager', () => {
    it('is a 403 (reported) and has no link for users without manageOthers', async () => {
      mount();
      const { agent, csrf, page } = await loggedIn('alice');
      expect(page).not.toContain('Token manager');
      expect((await agent.get('/tokens/manage')).status).toBe(403);
      const all = await agent
        .post('/tokens/manage/revoke-all')
        .type('form')
        .send({ _csrf: csrf, user: 'eve', confirm: 'yes' });
      expect(all.status).toBe(403);
      expect(events.filter((e) => e.type === 'auth.denied' && e.code === 'PERMISSION_DENIED')).toHaveLength(
        2,
      );
    });

    it('filters, pages, and refuses bad filters with a 400', async () => {
      mount();
      for (let i = 0; i < 3; i++) await gate.tokens.create({ user: 'bob', name: `bob ${i}`, scope: 'read' });
      await gate.tokens.create({ user: 'carl', name: 'carl', scope: 'write' });
      const { agent, page } = await loggedIn('admin');
      expect(page).toContain('Token manager');
      const first = await agent.get('/tokens/manage?user=bob&limit=2');
      expect(first.status).toBe(200);
      expect(first.text.match(/href="\.\/token\//g)).toHaveLength(2);
      const next = /href="\.\/(manage\?user=bob&amp;start=\d+&amp;limit=2)">Next page/.exec(first.text)![1]!;
      const second = await agent.get(`/tokens/${next.replaceAll('&amp;', '&')}`);
      expect(second.text.match(/href="\.\/token\//g)).toHaveLength(1);
      expect(second.text).toContain('First page');
      expect(second.text).not.toContain('Next page');
      const writes = await agent.get('/tokens/manage?scope=write');
      expect(writes.text).toContain('carl');
      expect(writes.text).not.toContain('bob 1');
      for (const query of ['createdAfter=yesterday', 'scope=admin', 'limit=0', 'user=a:b', 'name=a&name=b']) {
        const res = await agent.get(`/tokens/manage?${query}`);
        expect(res.status, query).toBe(400);
      }
    });

    it('revokes all tokens of a user after a confirmation', async () => {
      mount();
      for (let i = 0; i < 2; i++) await gate.tokens.create({ user: 'bob', name: `bob ${i}`, scope: 'read' });
      const { agent, csrf } = await loggedIn('admin');
      const ask = await agent
        .post('/tokens/manage/revoke-all')
        .type('form')
        .send({ _csrf: csrf, user: 'bob' });
      expect(ask.text).toContain('Revoke every token of bob?');
      const done = await agent
        .post('/tokens/manage/revoke-all')
        .type('form')
        .send({ _csrf: csrf, user: 'bob', confirm: 'yes' });
      expect(done.headers['location']).toBe('../manage?user=bob&done=revoked-all');
      expect(await gate.tokens.list('bob')).toHaveLength(0);
      expect(events.filter((e) => e.type === 'token.revoked' && e.actor === 'admin')).toHaveLength(2);
    });
  });

  describe.each(EXPRESS_VERSIONS)('on %s', (_name, makeApp) => {
    it('logs in, creates a token, refuses a foreign origin and a bad filter', async () => {
      app = makeApp();
      mount();
      const { agent, csrf } = await loggedIn('admin');
      const created = await agent
        .post('/tokens/create')
        .type('form')
        .send({ _csrf: csrf, name: 'on express', scope: 'write' });
      expect(created.status).toBe(201);
      const foreign = await agent
        .post('/tokens/create')
        .set('Origin', 'https://evil.example.com')
        .type('form')
        .send({ _csrf: csrf, name: 'x', scope: 'read' });
      expect(foreign.status).toBe(403);
      expect((await agent.get('/tokens/manage?user=a&user=b')).status).toBe(400);
      expect((await agent.get('/tokens/manage?done[x]=1')).status).toBe(200);
      expect((await gate.tokens.list('admin')).map((t) => t.name)).toEqual(['on express']);
    });
  });

  describe('principal mode', () => {
    it('takes the user from the app, still needs the CSRF token, and has no login or logout', async () => {
      app.use((req, _res, next) => {
        (req as { user?: string | undefined }).user = req.get('x-user');
        next();
      });
      app.use(
        '/tokens',
        gate.pages({
          principal: (req) => (req as { user?: string }).user,
          session: { secret: SECRET, secure: false },
        }),
      );
      expect((await request(app).get('/tokens/')).status).toBe(401);
      const agent = request.agent(app);
      const page = await agent.get('/tokens/').set('x-user', 'alice');
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('Log out');
      const post = (fields: Record<string, string>) =>
        agent
          .post('/tokens/create')
          .set('x-user', 'alice')
          .type('form')
          .send({ name: 'p', scope: 'read', ...fields });
      expect((await post({})).status).toBe(403);
      expect((await post({ _csrf: csrfOf(page.text) })).status).toBe(201);
      expect((await agent.get('/tokens/login').set('x-user', 'alice')).status).toBe(303);
      expect((await agent.post('/tokens/logout').set('x-user', 'alice').type('form').send({})).status).toBe(
        404,
      );
    });
  });
});
