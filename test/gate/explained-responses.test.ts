import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forwardTo } from '../../lib/forward/forward-to.js';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

describe.each(EXPRESS_VERSIONS)('responses that explain themselves, with %s', (_name, makeApp) => {
  let gate: TokenGate;
  let app: ReturnType<typeof echoApp>;
  beforeAll(() => {
    gate = createTokenGate({ ipAllowlist: ['127.0.0.0/8', '::1/128', '10.9.9.9'], throttle: false });
    app = echoApp(makeApp, gate.protect());
  });
  afterAll(() => gate.close());

  const create = (extra: Record<string, unknown> = {}) =>
    gate.tokens.create({ user: 'alice', name: 'ci', scope: 'read', ...extra });

  it('tells the token’s expiry as an HTTP date on every response that passed, and only then', async () => {
    const expiresAt = new Date('2031-03-04T05:06:07.890Z');
    const { token } = await create({ expiresAt });
    const res = await request(app).get('/rest/api/1.0/projects').auth(token, { type: 'bearer' });
    expect(res.status).toBe(200);
    expect(res.headers['api-token-expiration']).toBe('Tue, 04 Mar 2031 05:06:07 GMT');
    expect(new Date(res.headers['api-token-expiration']!).getTime()).toBe(expiresAt.getTime() - 890);
    const refused = await request(app).post('/rest/api/1.0/projects').auth(token, { type: 'bearer' });
    expect(refused.status).toBe(403);
    expect(refused.headers['api-token-expiration']).toBeUndefined();
    const forever = await create();
    const plain = await request(app).get('/rest').auth(forever.token, { type: 'bearer' });
    expect(plain.status).toBe(200);
    expect(plain.headers['api-token-expiration']).toBeUndefined();
  });

  it('says which scope SCOPE_INSUFFICIENT needed, in a header and beside Bitbucket’s error fields', async () => {
    const { token } = await create();
    const res = await request(app).post('/rest/api/1.0/projects/P/repos').auth(token, { type: 'bearer' });
    expect(res.status).toBe(403);
    expect(res.headers['api-token-required-scope']).toBe('write');
    expect(res.body).toEqual({
      errors: [
        {
          context: null,
          message: expect.stringMatching(/write scope/),
          exceptionName: null,
          code: 'SCOPE_INSUFFICIENT',
          requiredScope: 'write',
        },
      ],
    });
  });

  it('names the kind of restriction that refused, never its values', async () => {
    const cases: Array<[Record<string, unknown>, string, string, string[]]> = [
      [{ allowedIps: ['192.0.2.0/24'] }, 'IP_NOT_ALLOWED', 'allowedIps', ['192.0.2']],
      [
        { requiredHeaders: { 'x-ci-runner': 'build-7-secretish' } },
        'HEADER_REQUIRED',
        'requiredHeaders',
        ['build-7'],
      ],
      [{ resources: ['OPS/deploy'] }, 'RESOURCE_NOT_ALLOWED', 'resources', ['OPS', 'deploy']],
    ];
    for (const [restriction, code, kind, hidden] of cases) {
      const { token } = await create(restriction);
      const res = await request(app)
        .get('/rest/api/1.0/projects/OTHER/repos/x')
        .auth(token, { type: 'bearer' });
      expect(res.status).toBe(403);
      expect(res.headers['api-token-restriction']).toBe(kind);
      expect(res.body.errors[0]).toMatchObject({
        code,
        restriction: kind,
        context: null,
        exceptionName: null,
      });
      for (const value of hidden) expect(JSON.stringify(res.body)).not.toContain(value);
      // git shows text: the header still says it.
      const git = await request(app)
        .get('/scm/other/x.git/info/refs?service=git-upload-pack')
        .set('User-Agent', 'git/2.43.0')
        .auth(token, { type: 'bearer' });
      expect(git.status).toBe(403);
      expect(git.type).toBe('text/plain');
      expect(git.headers['api-token-restriction']).toBe(kind);
    }
  });

  it('tells the proxy’s own allowlist apart from the token’s', async () => {
    const { token } = await create();
    const strict = createTokenGate({ ipAllowlist: ['10.9.9.9'] });
    try {
      const strictApp = echoApp(makeApp, strict.protect());
      const { token: other } = await strict.tokens.create({ user: 'alice', name: 'x', scope: 'read' });
      const res = await request(strictApp).get('/rest').auth(other, { type: 'bearer' });
      expect(res.status).toBe(403);
      expect(res.headers['api-token-restriction']).toBe('ipAllowlist');
      expect(res.body.errors[0].restriction).toBe('ipAllowlist');
      expect(token).not.toBe(other);
    } finally {
      await strict.close();
    }
  });
});

describe('API-Token-Expiration through forwardTo', () => {
  let upstream: Server;
  let gate: TokenGate;
  beforeAll(async () => {
    upstream = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"size":0}');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    gate = createTokenGate({});
  });
  afterAll(async () => {
    await gate.close();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it('keeps the header beside what Bitbucket answered', async () => {
    const port = (upstream.address() as AddressInfo).port;
    const app = EXPRESS_VERSIONS[1]![1]();
    app.use('/rest', gate.protect(), forwardTo(`http://127.0.0.1:${port}`));
    const { token } = await gate.tokens.create({
      user: 'bob',
      name: 'x',
      scope: 'read',
      expiresAt: new Date(Date.now() + 7 * 86_400_000),
    });
    const res = await request(app).get('/rest/api/1.0/projects').auth(token, { type: 'bearer' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ size: 0 });
    expect(Date.parse(res.headers['api-token-expiration']!)).toBeGreaterThan(Date.now() + 6 * 86_400_000);
  });
});
