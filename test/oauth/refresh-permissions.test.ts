import { createHash, randomBytes } from 'node:crypto';
import express, { type Express } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTokenGate, MemoryTokenStore, passwordLogin, type TokenGate } from '../../lib/index.js';

const SECRET = 'a session secret of at least thirty-two bytes';
const REDIRECT = 'http://127.0.0.1:53682';
const login = passwordLogin({
  verify: async (user, password) => (password === `${user}-pw` ? { name: user, slug: user } : null),
});
const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

/**
 * A refresh mints a new token: it must obey the user's permissions as they are now, not as
 * they were at the consent (a user taken out of the write group kept getting write tokens).
 */
describe('refresh tokens and changed permissions', () => {
  let gate: TokenGate;
  let app: Express;
  /** The gate's group source, changed by the tests as an administrator would. */
  let memberships: Record<string, string[]>;

  beforeEach(() => {
    memberships = { admin: ['admins', 'staff'] };
    gate = createTokenGate({
      store: new MemoryTokenStore(),
      groups: async (user) => memberships[user] ?? [],
      permissions: { createTokens: ['staff'], createWriteTokens: ['admins'] },
    });
    app = express();
    app.use('/tokens', gate.pages({ login, session: { secret: SECRET, secure: false } }));
    app.use('/oauth', gate.oauth());
  });
  afterEach(async () => {
    await gate.close();
  });

  async function signIn(scope: 'read' | 'write'): Promise<Record<string, string>> {
    const agent = request.agent(app);
    const form = await agent.get('/tokens/login');
    await agent
      .post('/tokens/login')
      .type('form')
      .send({ _csrf: csrfOf(form.text), username: 'admin', password: 'admin-pw' });
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const query = new URLSearchParams({
      client_id: 'git',
      redirect_uri: REDIRECT,
      response_type: 'code',
      state: 's',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const page = await agent.get(`/tokens/oauth/authorize?${query}`);
    const lifetime = /<option value="(\d+)" selected/.exec(page.text)![1]!;
    const back = await agent
      .post('/tokens/oauth/authorize')
      .type('form')
      .send({
        _csrf: csrfOf(page.text),
        client_id: 'git',
        redirect_uri: REDIRECT,
        state: 's',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        grantScope: scope,
        lifetime,
        decision: 'allow',
      });
    const code = new URL(back.headers['location'] as string).searchParams.get('code')!;
    const res = await request(app).post('/oauth/token').type('form').send({
      grant_type: 'authorization_code',
      client_id: 'git',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.scope).toBe(scope);
    return res.body as Record<string, string>;
  }

  const refresh = (refreshToken: string) =>
    request(app)
      .post('/oauth/token')
      .type('form')
      .send({ grant_type: 'refresh_token', client_id: 'git', refresh_token: refreshToken });

  it('still rotates while the user keeps the permission', async () => {
    const first = await signIn('write');
    const res = await refresh(first['refresh_token']!);
    expect(res.status, res.text).toBe(200);
    expect(res.body.scope).toBe('write');
  });

  it('gives no new write token to a user taken out of the write group, and ends the sign-in', async () => {
    const first = await signIn('write');
    memberships['admin'] = ['staff'];
    const res = await refresh(first['refresh_token']!);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(res.body.access_token).toBeUndefined();
    expect(await gate.tokens.verify(first['access_token']!)).toBeNull();
    // The sign-in is over: the same refresh token does not work once the group is back either.
    memberships['admin'] = ['admins', 'staff'];
    expect((await refresh(first['refresh_token']!)).status).toBe(400);
    expect((await gate.tokens.list('admin')).filter((t) => t.scope === 'write')).toHaveLength(0);
  });

  it('gives nothing to a user who may no longer create tokens at all', async () => {
    const first = await signIn('read');
    memberships['admin'] = [];
    const res = await refresh(first['refresh_token']!);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(await gate.tokens.list('admin')).toHaveLength(0);
  });

  it('keeps the sign-in when the group source is down (503), and rotates once it is back', async () => {
    const first = await signIn('read');
    const saved = memberships;
    memberships = new Proxy({} as Record<string, string[]>, {
      get() {
        throw new Error('directory down');
      },
    });
    const down = await refresh(first['refresh_token']!);
    expect(down.status).toBe(503);
    expect(down.body.error).toBe('temporarily_unavailable');
    memberships = saved;
    const back = await refresh(first['refresh_token']!);
    expect(back.status, back.text).toBe(200);
  });
});
