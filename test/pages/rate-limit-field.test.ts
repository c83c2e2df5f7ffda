import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { createTokenGate, passwordLogin } from '../../lib/index.js';

const SECRET = 'a session secret of at least thirty-two bytes';
const login = passwordLogin({
  verify: async (user, password) =>
    user === 'alice' && password === 'alice-pw' ? { name: user, slug: user } : null,
});
const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
const formIdOf = (html: string) => /name="formId" value="([^"]+)"/.exec(html)?.[1] ?? '';

describe('the token pages’ rate-limit field', () => {
  const gate = createTokenGate({ rateLimit: { perToken: { requests: 600, windowSeconds: 60 } } });
  const app = express();
  app.use('/tokens', gate.pages({ login, session: { secret: SECRET, secure: false } }));
  afterAll(() => gate.close());

  it('creates a token with its own limit, shows and changes it, and names the field when it is wrong', async () => {
    const agent = request.agent(app);
    const form = await agent.get('/tokens/login');
    await agent
      .post('/tokens/login')
      .type('form')
      .send({ _csrf: csrfOf(form.text), username: 'alice', password: 'alice-pw' })
      .expect(303);
    const page = await agent.get('/tokens/');
    expect(page.text).toContain('name="rateLimit"');
    const csrf = csrfOf(page.text);
    const created = await agent
      .post('/tokens/create')
      .type('form')
      .send({ _csrf: csrf, formId: formIdOf(page.text), name: 'ci', scope: 'read', rateLimit: '60/60' });
    expect(created.status).toBeLessThan(400);
    const [info] = await gate.tokens.list('alice');
    expect(info?.rateLimit).toEqual({ requests: 60, windowSeconds: 60 });
    const shown = await agent.get(`/tokens/token/${info!.id}`);
    expect(shown.text).toContain('value="60/60"');
    for (const [value, message] of [
      ['fast', /requests \/ seconds, e\.g\. 600\/60/],
      ['601/60', /at most 600 requests in 60 seconds/],
    ] as const) {
      const bad = await agent
        .post(`/tokens/token/${info!.id}/update`)
        .type('form')
        .send({ _csrf: csrf, name: 'ci', rateLimit: value });
      expect(bad.status).toBe(400);
      expect(bad.text).toMatch(message);
      expect(bad.text).toContain('id="f-rateLimit-error"');
    }
    const cleared = await agent
      .post(`/tokens/token/${info!.id}/update`)
      .type('form')
      .send({ _csrf: csrf, name: 'ci', rateLimit: '' });
    expect(cleared.status).toBe(303);
    expect((await gate.tokens.get(info!.id))?.rateLimit).toBeNull();
  });
});
