import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { forwardTo } from '../../lib/forward/index.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';

/** protect() in front of the streaming forwarder, and an upstream that echoes the body it got. */
describe('resources restrictions judge the request body', () => {
  let upstream: Server;
  let app: express.Express;
  const events: AuditEvent[] = [];
  const gate = createTokenGate({ onEvent: (event) => events.push(event) });
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        res.setHeader('Content-Type', 'application/json');
        res.end(
          JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString('utf8') }),
        );
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const { port } = upstream.address() as AddressInfo;
    app = express();
    app.use(['/rest', '/scm'], gate.protect(), forwardTo(`http://127.0.0.1:${port}`));
    const make = async (name: string, resources: string[] | undefined) =>
      (await gate.tokens.create({ user: 'alice', name, scope: 'write', ...(resources ? { resources } : {}) }))
        .token;
    tokens['repo'] = await make('repo', ['ALLOWED/repo']);
    tokens['repoAndHome'] = await make('home', ['ALLOWED/repo', '~alice']);
    tokens['project'] = await make('project', ['ALLOWED']);
    tokens['personal'] = await make('personal', ['~alice/r']);
    tokens['free'] = await make('free', undefined);
  });

  afterAll(async () => {
    await gate.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  const send = (
    method: 'post' | 'put' | 'get',
    path: string,
    token: string,
    body?: string,
    type = 'application/json',
  ) => {
    let req = request(app)[method](path).set('Authorization', `Bearer ${tokens[token]}`);
    if (body !== undefined) req = req.set('Content-Type', type).send(body);
    return req;
  };
  const code = (res: { body: { errors?: Array<{ code: string }> } }) => res.body.errors?.[0]?.code;

  const REPO = '/rest/api/1.0/projects/ALLOWED/repos/repo';
  const intoSecret = JSON.stringify({ project: { key: 'SECRET' } });
  const pullRequest = (from: { slug: string; key: string }, to = { slug: 'repo', key: 'ALLOWED' }) =>
    JSON.stringify({
      title: 'Take it',
      fromRef: { id: 'refs/heads/x', repository: { slug: from.slug, project: { key: from.key } } },
      toRef: { id: 'refs/heads/main', repository: { slug: to.slug, project: { key: to.key } } },
    });

  it.each([
    ['a fork into SECRET', 'post', REPO, intoSecret],
    ['a move into SECRET', 'put', REPO, intoSecret],
    ['a fork into the owner’s personal project (no project given)', 'post', REPO, '{"name":"repo"}'],
    ['a rename to another slug', 'put', REPO, '{"name":"Other Repo"}'],
    [
      'a pull request from a SECRET repository',
      'post',
      `${REPO}/pull-requests`,
      pullRequest({ slug: 's', key: 'SECRET' }),
    ],
    [
      'a pull request into another repository',
      'put',
      `${REPO}/pull-requests/7`,
      pullRequest({ slug: 'repo', key: 'ALLOWED' }, { slug: 'x', key: 'SECRET' }),
    ],
    [
      'the same path in another spelling',
      'post',
      '/rest/api/latest/PROJECTS/allowed/REPOS/Repo/',
      intoSecret,
    ],
  ] as const)('refuses %s with 403 RESOURCE_NOT_ALLOWED', async (_what, method, path, body) => {
    const res = await send(method, path, 'repo', body);
    expect(res.status).toBe(403);
    expect(code(res)).toBe('RESOURCE_NOT_ALLOWED');
    expect(events.at(-1)).toMatchObject({ type: 'auth.denied', code: 'RESOURCE_NOT_ALLOWED' });
  });

  it('judges a method override as the method it claims (a GET carrying a fork)', async () => {
    const res = await request(app)
      .get(REPO)
      .set('Authorization', `Bearer ${tokens['repo']}`)
      .set('X-HTTP-Method-Override', 'POST')
      .set('Content-Type', 'application/json')
      .send(intoSecret);
    expect(code(res)).toBe('RESOURCE_NOT_ALLOWED');
  });

  it('lets allowed bodies through to Bitbucket byte for byte', async () => {
    const body = pullRequest({ slug: 'repo', key: 'allowed' });
    const pr = await send('post', `${REPO}/pull-requests`, 'repo', body);
    expect(pr.status).toBe(200);
    expect(pr.body).toEqual({ method: 'POST', url: `${REPO}/pull-requests`, body });
    const fork = await send('post', REPO, 'repoAndHome', '{"name":"repo"}');
    expect(fork.status).toBe(200);
    expect(fork.body.body).toBe('{"name":"repo"}');
    const rename = await send('put', REPO, 'repo', '{"name":"Repo","description":"😀 unchanged slug"}');
    expect(rename.status).toBe(200);
    const create = await send(
      'post',
      '/rest/api/1.0/projects/ALLOWED/repos',
      'project',
      '{"name":"New One"}',
    );
    expect(create.status).toBe(200);
    const moveHome = await send('put', '/rest/api/1.0/users/alice/repos/r', 'personal', '{"name":"r"}');
    expect(moveHome.status).toBe(200);
  });

  it('refuses a personal repository moved into a project', async () => {
    const res = await send('put', '/rest/api/1.0/users/alice/repos/r', 'personal', intoSecret);
    expect(code(res)).toBe('RESOURCE_NOT_ALLOWED');
  });

  it('refuses a project key changed to one outside the patterns', async () => {
    expect(code(await send('put', '/rest/api/1.0/projects/ALLOWED', 'project', '{"key":"SECRET"}'))).toBe(
      'RESOURCE_NOT_ALLOWED',
    );
    expect(
      (await send('put', '/rest/api/1.0/projects/ALLOWED', 'project', '{"description":"x"}')).status,
    ).toBe(200);
  });

  it.each([
    ['a form body', 'project=SECRET', 'application/x-www-form-urlencoded'],
    ['text/plain', intoSecret, 'text/plain'],
    ['JSON in another charset', intoSecret, 'application/json; charset=utf-16'],
    [
      'JSON that names a member twice',
      '{"project":{"key":"ALLOWED"},"project":{"key":"SECRET"}}',
      'application/json',
    ],
    ['JSON with another spelling of a judged name', '{"Project":{"key":"SECRET"}}', 'application/json'],
    ['a project named by id', '{"project":{"id":42}}', 'application/json'],
    [
      'a repository named by id',
      pullRequest({ slug: 'repo', key: 'ALLOWED' }).replace('"slug":"repo"', '"id":9,"slug":"repo"'),
      'application/json',
    ],
    ['a name Bitbucket transliterates', '{"name":"føø"}', 'application/json'],
    ['not JSON', '{"project":', 'application/json'],
    ['a JSON array', '[1]', 'application/json'],
    ['JSON nested 100,000 deep', `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, 'application/json'],
  ])('refuses %s on such a route with 403 RESOURCE_BODY_UNREADABLE', async (_what, body, type) => {
    const res = await send('post', REPO, 'repo', body, type);
    expect(res.status).toBe(403);
    expect(code(res)).toBe('RESOURCE_BODY_UNREADABLE');
  });

  it('refuses a body too large, or without a Content-Length, on such a route', async () => {
    const big = JSON.stringify({ name: 'repo', description: 'x'.repeat(1_100_000) });
    expect(code(await send('put', REPO, 'repo', big))).toBe('RESOURCE_BODY_UNREADABLE');
    const chunked = request(app)
      .put(REPO)
      .set('Authorization', `Bearer ${tokens['repo']}`)
      .set('Content-Type', 'application/json')
      .set('Transfer-Encoding', 'chunked');
    chunked.write('{"name":');
    chunked.write('"repo"}');
    expect(code(await chunked)).toBe('RESOURCE_BODY_UNREADABLE');
  });

  it('leaves other routes, reads, and unrestricted tokens alone', async () => {
    const upload = await send(
      'put',
      `${REPO}/browse/README.md`,
      'repo',
      'any body at all',
      'multipart/form-data; boundary=x',
    );
    expect(upload.status).toBe(200);
    expect(upload.body.body).toBe('any body at all');
    expect((await send('get', REPO, 'repo')).status).toBe(200);
    expect((await send('post', REPO, 'free', intoSecret)).status).toBe(200);
  });
});
