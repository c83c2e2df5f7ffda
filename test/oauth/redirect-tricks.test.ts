import { createHash, randomBytes } from 'node:crypto';
import express, { type Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenGate, MemoryTokenStore, passwordLogin, type TokenGate } from '../../lib/index.js';

const SECRET = 'a session secret of at least thirty-two bytes';
const login = passwordLogin({
  verify: async (user, password) => (password === `${user}-pw` ? { name: user, slug: user } : null),
});
const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

/** An attacker's redirect URIs: none may receive a code or even an error redirect. */
describe('redirect_uri tricks on the consent page', () => {
  let gate: TokenGate;
  let app: Express;
  let agent: ReturnType<typeof request.agent>;
  const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');

  beforeAll(async () => {
    gate = createTokenGate({ store: new MemoryTokenStore() });
    app = express();
    app.use('/tokens', gate.pages({ login, session: { secret: SECRET, secure: false } }));
    app.use(
      '/oauth',
      gate.oauth({ clients: [{ id: 'git' }, { id: 'web', redirectUris: ['https://app.example/cb'] }] }),
    );
    agent = request.agent(app);
    const form = await agent.get('/tokens/login');
    await agent
      .post('/tokens/login')
      .type('form')
      .send({ _csrf: csrfOf(form.text), username: 'alice', password: 'alice-pw' });
  });
  afterAll(async () => {
    await gate.close();
  });

  const authorize = (redirect_uri: string, extra: Record<string, string> = {}) =>
    agent.get(
      `/tokens/oauth/authorize?${new URLSearchParams({
        client_id: 'git',
        redirect_uri,
        response_type: 'code',
        state: 's',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        ...extra,
      })}`,
    );

  it('refuses look-alike hosts, userinfo, zone ids, other schemes, fragments and prefixes of registered URIs', async () => {
    for (const uri of [
      'http://127.0.0.1.evil.example/',
      'http://127.0.0.1.nip.io:8000/',
      'http://localhost.evil.example/',
      'http://evil.example@127.0.0.1:8000/',
      'http://127.0.0.1:8000@evil.example/',
      'http://user:pw@127.0.0.1:8000/',
      'http://[fe80::1%25lo]:8000/',
      'http://[::ffff:7f00:1]:8000/',
      'https://127.0.0.1:8000/',
      'HTTPS://evil.example/',
      'javascript://127.0.0.1/%0aalert(1)',
      'file://127.0.0.1/etc/passwd',
      'http://127.0.0.1:8000/#frag',
      'http://127.0.0.1:8000/#',
      '//127.0.0.1:8000/',
      '/tokens/',
      'https://app.example/cb/../evil',
      'https://app.example/cb?x=1',
      'https://app.example/cb',
      `http://127.0.0.1:8000/${'a'.repeat(2_100)}`,
    ]) {
      const res = await authorize(uri);
      expect(res.status, uri).toBe(400);
      expect(res.headers['location'], uri).toBeUndefined();
    }
  });

  it('takes an upper-case scheme and host of a loopback URI as the same loopback address', async () => {
    for (const uri of ['HTTP://127.0.0.1:8000/', 'http://LOCALHOST:8000/cb']) {
      const res = await authorize(uri);
      expect(res.status, uri).toBe(200);
      expect(res.headers['content-security-policy']).toMatch(
        /form-action 'self' http:\/\/(127\.0\.0\.1|localhost):8000[; ]/,
      );
    }
  });

  it('escapes the state and client values it writes into the consent page', async () => {
    const res = await authorize('http://127.0.0.1:8000/', { state: '"><script>alert(1)</script>' });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('<script>alert(1)');
  });

  it('never redirects to a URI given twice, or one smuggled in a second client_id', async () => {
    const twice = await agent.get(
      `/tokens/oauth/authorize?client_id=git&response_type=code&state=s&code_challenge=${challenge}&code_challenge_method=S256&redirect_uri=http://127.0.0.1:1/&redirect_uri=https://evil.example/`,
    );
    expect(twice.status).toBe(400);
    expect(twice.headers['location']).toBeUndefined();
    const clients = await agent.get(
      `/tokens/oauth/authorize?client_id=git&client_id=web&response_type=code&state=s&code_challenge=${challenge}&code_challenge_method=S256&redirect_uri=https://app.example/cb`,
    );
    expect(clients.status).toBe(400);
    expect(clients.headers['location']).toBeUndefined();
  });
});
