import { createHash, randomBytes } from 'node:crypto';
import express, { type Express } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AuditEvent,
  createTokenGate,
  MemoryTokenStore,
  passwordLogin,
  type TokenGate,
} from '../../lib/index.js';

const SECRET = 'a session secret of at least thirty-two bytes';
const REDIRECT = 'http://127.0.0.1:53682';
const login = passwordLogin({
  verify: async (user, password) => (password === `${user}-pw` ? { name: user, slug: user } : null),
});
const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

/**
 * A refresh token lives 30 days (git-credential-oauth keeps it beside the access token, where a
 * dotfiles repository may publish it): reported to the revocation endpoint for found tokens, it
 * must end its sign-in like an API token does.
 */
describe('a leaked refresh token reported to the revocation endpoint', () => {
  let gate: TokenGate;
  let app: Express;
  let events: AuditEvent[];

  beforeEach(() => {
    events = [];
    gate = createTokenGate({ store: new MemoryTokenStore(), onEvent: (e) => events.push(e) });
    app = express();
    app.use('/tokens', gate.pages({ login, session: { secret: SECRET, secure: false } }));
    app.use('/oauth', gate.oauth());
    app.post('/leaked', gate.revocationEndpoint());
  });
  afterEach(async () => {
    await gate.close();
  });

  async function signIn(): Promise<Record<string, string>> {
    const agent = request.agent(app);
    const form = await agent.get('/tokens/login');
    await agent
      .post('/tokens/login')
      .type('form')
      .send({ _csrf: csrfOf(form.text), username: 'alice', password: 'alice-pw' });
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const request_ = {
      client_id: 'git',
      redirect_uri: REDIRECT,
      state: 's',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    };
    const page = await agent.get(
      `/tokens/oauth/authorize?${new URLSearchParams({ ...request_, response_type: 'code' })}`,
    );
    const lifetime = /<option value="(\d+)" selected/.exec(page.text)![1]!;
    const back = await agent
      .post('/tokens/oauth/authorize')
      .type('form')
      .send({ _csrf: csrfOf(page.text), ...request_, grantScope: 'read', lifetime, decision: 'allow' });
    const code = new URL(back.headers['location'] as string).searchParams.get('code')!;
    const res = await request(app).post('/oauth/token').type('form').send({
      grant_type: 'authorization_code',
      client_id: 'git',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    expect(res.status, res.text).toBe(200);
    return res.body as Record<string, string>;
  }

  const refresh = (token: string) =>
    request(app)
      .post('/oauth/token')
      .type('form')
      .send({ grant_type: 'refresh_token', client_id: 'git', refresh_token: token });

  it('ends the sign-in: the refresh token and its access token stop working, and the leak is reported', async () => {
    const signedIn = await signIn();
    const access = await gate.tokens.verify(signedIn['access_token']!);
    const res = await request(app)
      .post('/leaked')
      .send({ credentials: [signedIn['refresh_token']] });
    expect(res.status).toBe(202);
    for (let i = 0; i < 100 && (await gate.tokens.verify(signedIn['access_token']!)) !== null; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(await gate.tokens.verify(signedIn['access_token']!)).toBeNull();
    const again = await refresh(signedIn['refresh_token']!);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
    const leaked = events.find((e) => e.type === 'token.leaked');
    expect(leaked).toMatchObject({ tokenId: access!.id, user: 'alice', source: 'report', revoked: true });
    expect(JSON.stringify(events)).not.toContain(signedIn['refresh_token']!.split('.')[1]);
  });

  it('leaves a sign-in alone for a refresh token with a wrong secret', async () => {
    const signedIn = await signIn();
    const [familyPart] = signedIn['refresh_token']!.split('.');
    const forged = `${familyPart}.${randomBytes(32).toString('base64url')}`;
    expect(
      (
        await request(app)
          .post('/leaked')
          .send({ credentials: [forged] })
      ).status,
    ).toBe(202);
    await new Promise((r) => setTimeout(r, 100));
    expect(await gate.tokens.verify(signedIn['access_token']!)).not.toBeNull();
    expect((await refresh(signedIn['refresh_token']!)).status).toBe(200);
  });
});
