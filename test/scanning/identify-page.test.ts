import express from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTokenGate, passwordLogin, type TokenGate } from '../../lib/index.js';
import { assembleToken } from '../../lib/tokens/format.js';

const SECRET = 'a session secret of at least thirty-two bytes';
const PASSWORDS: Record<string, string> = { admin: 'admin-pw', alice: 'alice-pw' };
const login = passwordLogin({
  verify: async (user, password) => (PASSWORDS[user] === password ? { name: user, slug: user } : null),
});
const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

describe('identify a token in the token manager', () => {
  let gate: TokenGate;
  let app: express.Express;

  beforeEach(() => {
    gate = createTokenGate({ groups: { admin: ['admins'] }, permissions: { manageOthers: ['admins'] } });
    app = express();
    app.use('/tokens', gate.pages({ login, session: { secret: SECRET, secure: false } }));
  });
  afterEach(() => gate.close());

  async function loggedIn(user: string) {
    const agent = request.agent(app);
    const form = await agent.get('/tokens/login');
    await agent
      .post('/tokens/login')
      .type('form')
      .send({ _csrf: csrfOf(form.text), username: user, password: PASSWORDS[user] });
    const manager = await agent.get('/tokens/manage');
    return { agent, csrf: csrfOf(manager.text), manager };
  }

  it('shows owner, scope, restrictions, created, last use and status, never the token or its hash', async () => {
    const { token, info } = await gate.tokens.create({
      user: 'alice',
      name: 'deploys',
      scope: 'write',
      resources: ['PROJ/repo'],
    });
    const { agent, csrf, manager } = await loggedIn('admin');
    expect(manager.text).toMatch(/action="[^"]*manage\/identify"/);
    const res = await agent.post('/tokens/manage/identify').type('form').send({ _csrf: csrf, token });
    expect(res.status).toBe(200);
    expect(res.text).toContain('Status: live');
    for (const shown of [info.id, 'alice', 'deploys', 'PROJ/repo', info.createdAt.slice(0, 10), 'Never used'])
      expect(res.text).toContain(shown);
    expect(res.text).not.toContain(token);
    expect(res.text).not.toContain('hmac-sha256');
    expect(res.headers['cache-control']).toContain('no-store');

    await gate.tokens.revoke(info.id);
    const revoked = await agent.post('/tokens/manage/identify').type('form').send({ _csrf: csrf, token });
    expect(revoked.text).toContain('Status: unknown');
    expect(revoked.text).not.toContain('deploys');
  });

  it('says unknown for a wrong secret, refuses garbage, a missing CSRF token and non-administrators', async () => {
    const { info } = await gate.tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    const forged = assembleToken('bbt', info.id, 'A'.repeat(43));
    const { agent, csrf } = await loggedIn('admin');
    const wrong = await agent
      .post('/tokens/manage/identify')
      .type('form')
      .send({ _csrf: csrf, token: forged });
    expect(wrong.text).toContain('Status: unknown');
    expect(wrong.text).not.toContain('alice');
    const garbage = await agent
      .post('/tokens/manage/identify')
      .type('form')
      .send({ _csrf: csrf, token: 'bbt_x' });
    expect(garbage.status).toBe(400);
    expect((await agent.post('/tokens/manage/identify').type('form').send({ token: forged })).status).toBe(
      403,
    );
    const alice = await loggedIn('alice');
    const home = await alice.agent.get('/tokens/');
    const refused = await alice.agent
      .post('/tokens/manage/identify')
      .type('form')
      .send({ _csrf: csrfOf(home.text), token: forged });
    expect(refused.status).toBe(403);
  });
});
