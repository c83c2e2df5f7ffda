import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { blockPasswordAuth } from '../../lib/middleware/block-password-auth.js';
import { extractCredentials } from '../../lib/middleware/extract-credentials.js';
import { basic, EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

describe.each(EXPRESS_VERSIONS)('blockPasswordAuth on %s', (_name, makeApp) => {
  const app = echoApp(makeApp, extractCredentials(), blockPasswordAuth());

  it('refuses Basic auth with a password: 401 telling the user to use an API token', async () => {
    const res = await request(app)
      .get('/rest/api/1.0/projects')
      .set('Authorization', basic('alice', 'hunter2'));
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toContain('Basic');
    expect(res.body.errors[0]).toMatchObject({
      code: 'PASSWORD_AUTH_DISABLED',
      message: expect.stringMatching(/API token/),
    });
    expect(JSON.stringify(res.body)).not.toContain('hunter2');
  });

  it('tells git users in plain text, which git shows', async () => {
    const res = await request(app)
      .get('/scm/p/r.git/info/refs')
      .set('User-Agent', 'git/2.39.5')
      .set('Authorization', basic('a', 'pw'));
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/API token/);
  });

  it('lets token-shaped and anonymous requests through', async () => {
    expect((await request(app).get('/')).status).toBe(200);
    expect((await request(app).get('/').set('Authorization', basic('alice', 'bbt_x'))).status).toBe(200);
  });

  it('uses a custom message', async () => {
    const custom = echoApp(
      makeApp,
      extractCredentials(),
      blockPasswordAuth({ message: 'Get a token at /tokens.' }),
    );
    const res = await request(custom).get('/').set('Authorization', basic('a', 'pw'));
    expect(res.body.errors[0].message).toBe('Get a token at /tokens.');
  });
});
