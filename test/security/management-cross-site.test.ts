import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditEvent, bitbucketLogin, createTokenGate, type TokenGate } from '../../lib/index.js';
import { type BitbucketStandIn, startBitbucketStandIn } from '../support/bitbucket-stand-in.js';

const run = promisify(execFile);
const ALICE = `Basic ${Buffer.from('alice:correct horse').toString('base64')}`;
const FORM = 'application/x-www-form-urlencoded';

/**
 * The management API behind `bitbucketLogin` (Basic credentials a browser caches): a page on
 * another site cannot make a logged-in browser create, rotate, copy, change or revoke tokens.
 */
describe('management API: no cross-site changes', () => {
  let bitbucket: BitbucketStandIn;
  let gate: TokenGate;
  let app: express.Express;
  let server: Server;
  let base: string;
  const events: AuditEvent[] = [];

  beforeAll(async () => {
    bitbucket = await startBitbucketStandIn({
      adminToken: 'admin-http-token',
      groups: {},
      passwords: { alice: 'correct horse' },
    });
    gate = createTokenGate({ onEvent: (event) => events.push(event) });
    app = express();
    const login = bitbucketLogin({ baseUrl: bitbucket.baseUrl });
    app.use('/tokens/api', login, gate.router());
    app.use(
      '/behind-proxy/api',
      login,
      gate.router({ publicUrl: 'https://git.example.com/behind-proxy/api' }),
    );
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await gate?.close();
    await bitbucket?.close();
  });

  const fresh = async () =>
    (await gate.tokens.create({ user: 'alice', name: 'laptop', scope: 'read' })).info.id;
  const count = async () => (await gate.tokens.list('alice')).length;

  it('refuses a cross-site form post with cached Basic credentials (rotate, copy, create, revoke-all)', async () => {
    const id = await fresh();
    const before = await count();
    for (const [path, body] of [
      [`/tokens/api/${id}/rotate`, ''],
      [`/tokens/api/${id}/copy`, ''],
      ['/tokens/api/', 'name=x&scope=write'],
      ['/tokens/api/revoke-all', 'user=alice'],
    ] as const) {
      for (const type of [FORM, 'text/plain', 'multipart/form-data; boundary=x']) {
        const res = await request(app)
          .post(path)
          .set('Authorization', ALICE)
          .set('Origin', 'https://evil.example')
          .set('Sec-Fetch-Site', 'cross-site')
          .set('Content-Type', type)
          .send(body);
        expect(res.status, `${path} ${type}`).toBe(403);
        expect(res.body.errors[0].code).toBe('CSRF_REJECTED');
      }
    }
    expect(await count()).toBe(before);
    expect((await gate.tokens.get(id))?.id).toBe(id);
    expect(events.some((e) => e.type === 'auth.denied' && e.code === 'CSRF_REJECTED')).toBe(true);
  });

  it('refuses Sec-Fetch-Site cross-site and same-site, and a foreign Origin, on every changing method', async () => {
    const id = await fresh();
    const cases: Array<[string, Record<string, string>]> = [
      ['cross-site', { 'Sec-Fetch-Site': 'cross-site' }],
      ['same-site', { 'Sec-Fetch-Site': 'same-site', Origin: 'https://other.example.com' }],
      ['same-site alone', { 'Sec-Fetch-Site': 'same-site' }],
      ['foreign Origin', { Origin: 'https://evil.example' }],
      ['Origin null', { Origin: 'null' }],
    ];
    for (const [label, headers] of cases) {
      const calls = [
        request(app).post('/tokens/api/').send({ name: 'x', scope: 'read' }),
        request(app).patch(`/tokens/api/${id}`).send({ name: 'renamed' }),
        request(app).put(`/tokens/api/${id}`).send({ name: 'renamed' }),
        request(app).post(`/tokens/api/${id}/rotate`).send({}),
        request(app).delete(`/tokens/api/${id}`),
      ];
      for (const call of calls) {
        const res = await call.set('Authorization', ALICE).set(headers);
        expect(res.status, label).toBe(403);
        expect(res.body.errors[0].code, label).toBe('CSRF_REJECTED');
      }
    }
    expect((await gate.tokens.get(id))?.name).toBe('laptop');
  });

  it('answers 415 to a form or text body even without any browser header, and changes nothing', async () => {
    const id = await fresh();
    const before = await count();
    const calls = [
      () => request(app).post('/tokens/api/').type('form').send({ name: 'x', scope: 'read' }),
      () =>
        request(app)
          .post('/tokens/api/')
          .set('Content-Type', 'text/plain')
          .send('{"name":"x","scope":"read"}'),
      () => request(app).post(`/tokens/api/${id}/rotate`).set('Content-Type', FORM).send(''),
      () => request(app).post(`/tokens/api/${id}/copy`).set('Content-Type', 'text/plain').send('x'),
      () => request(app).patch(`/tokens/api/${id}`).type('form').send({ name: 'renamed' }),
      () => request(app).post('/tokens/api/revoke-all').type('form').send({ user: 'alice' }),
      () => request(app).delete(`/tokens/api/${id}`).type('form').send({ x: '1' }),
    ];
    for (const call of calls) {
      const res = await call().set('Authorization', ALICE);
      expect(res.status).toBe(415);
      expect(res.body.errors[0].code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    expect(await count()).toBe(before);
    expect((await gate.tokens.get(id))?.name).toBe('laptop');
  });

  it('keeps same-origin browsers, scripts and curl working; DELETE needs no body', async () => {
    const sameOrigin = await request(app)
      .post('/tokens/api/')
      .set('Authorization', ALICE)
      .set('Sec-Fetch-Site', 'same-origin')
      .set('Origin', base)
      .set('Host', new URL(base).host)
      .send({ name: 'from the same origin', scope: 'read' });
    expect(sameOrigin.status).toBe(201);
    // Behind a proxy that changes Host, the configured public URL is the origin to match.
    const proxied = await request(app)
      .post('/behind-proxy/api/')
      .set('Authorization', ALICE)
      .set('Origin', 'https://git.example.com')
      .send({ name: 'through the proxy', scope: 'read' });
    expect(proxied.status).toBe(201);
    const { stdout } = await run('curl', [
      '-sS',
      '-u',
      'alice:correct horse',
      '-H',
      'Content-Type: application/json',
      '-d',
      '{"name":"curl","scope":"read"}',
      `${base}/tokens/api/`,
    ]);
    const created = JSON.parse(stdout) as { id: string; token: string };
    expect(created.token).toMatch(/^bbt_/);
    const rotated = await run('curl', [
      '-sS',
      '-u',
      'alice:correct horse',
      '-X',
      'POST',
      `${base}/tokens/api/${created.id}/rotate`,
    ]);
    const next = JSON.parse(rotated.stdout) as { id: string };
    expect(next.id).toMatch(/^[0-9A-Za-z]{11}$/);
    const deleted = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-u',
      'alice:correct horse',
      '-X',
      'DELETE',
      `${base}/tokens/api/${next.id}`,
    ]);
    expect(deleted.stdout).toBe('204');
  });

  it('refuses a publicUrl that is not an http(s) URL at startup', () => {
    expect(() => gate.router({ publicUrl: 'git.example.com' })).toThrow(/`publicUrl`/);
  });
});
