import fc from 'fast-check';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { authenticateToken } from '../../lib/middleware/authenticate-token.js';
import { extractCredentials } from '../../lib/middleware/extract-credentials.js';
import { requireScope } from '../../lib/middleware/require-scope.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { basic, EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

const runs = Number(process.env['FUZZ_RUNS'] ?? 100);
const REPO = '/scm/proj/repo.git';

describe.each(EXPRESS_VERSIONS)('requireScope on %s', (_name, makeApp) => {
  const tokens = new TokenService({
    store: new MemoryTokenStore(),
    hasher: sha256Hasher(),
    tokenPrefix: 'bbt',
  });
  const app = echoApp(
    makeApp,
    extractCredentials(),
    authenticateToken({ tokens }),
    requireScope({ extraMethods: { PROPFIND: 'read' } }),
  );
  let read = '';
  let write = '';
  const ready = (async () => {
    read = `Bearer ${(await tokens.create({ user: 'alice', name: 'r', scope: 'read' })).token}`;
    write = `Bearer ${(await tokens.create({ user: 'alice', name: 'w', scope: 'write' })).token}`;
  })();
  const send = async (
    method: string,
    path: string,
    auth: 'read' | 'write',
    headers: Record<string, string> = {},
    body?: string,
  ) => {
    await ready;
    let req = request(app)
      [method.toLowerCase() as 'get'](path)
      .set('Authorization', auth === 'read' ? read : write)
      .set(headers);
    if (body !== undefined) req = req.send(body);
    return req;
  };

  it.each(['GET', 'HEAD', 'OPTIONS'])('lets a read token %s', async (method) => {
    expect((await send(method, '/rest/api/1.0/projects', 'read')).status).toBe(200);
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE'])(
    'refuses %s for a read token and allows it for a write token',
    async (method) => {
      const refused = await send(method, '/rest/api/1.0/projects', 'read');
      expect(refused.status).toBe(403);
      expect(refused.body.errors[0].code).toBe('SCOPE_INSUFFICIENT');
      expect((await send(method, '/rest/api/1.0/projects', 'write')).status).toBe(200);
    },
  );

  it('refuses methods it does not know for both scopes, unless configured', async () => {
    for (const auth of ['read', 'write'] as const) {
      const res = await send('TRACE', '/rest', auth);
      expect(res.status).toBe(405);
    }
    await ready;
    const mkcol = await request(app).mkcol('/dav').set('Authorization', write);
    expect(mkcol.status).toBe(405);
    expect(mkcol.body.errors[0].code).toBe('METHOD_NOT_ALLOWED');
    expect((await request(app).propfind('/dav').set('Authorization', read)).status).toBe(200);
  });

  it.each(['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override'])(
    'judges %s as the method it claims',
    async (header) => {
      expect((await send('GET', '/rest/x', 'read', { [header]: 'DELETE' })).status).toBe(403);
      expect((await send('POST', `${REPO}/git-upload-pack`, 'read', { [header]: 'PUT' })).status).toBe(403);
      expect((await send('GET', '/rest/x', 'read', { [header]: 'TRACE' })).status).toBe(405);
      expect((await send('GET', '/rest/x', 'write', { [header]: 'delete' })).status).toBe(200);
    },
  );

  const UPLOAD_PACK = { 'Content-Type': 'application/x-git-upload-pack-request' };

  it('treats a git clone/fetch as a read and a push as a write', async () => {
    expect((await send('GET', `${REPO}/info/refs?service=git-upload-pack`, 'read')).status).toBe(200);
    expect((await send('POST', `${REPO}/git-upload-pack`, 'read', UPLOAD_PACK, 'x')).status).toBe(200);
    expect((await send('POST', '/scm/~alice/repo/git-upload-pack', 'read', UPLOAD_PACK, 'x')).status).toBe(
      200,
    );
    expect((await send('GET', `${REPO}/info/refs?service=git-receive-pack`, 'read')).status).toBe(403);
    expect((await send('POST', `${REPO}/git-receive-pack`, 'read', {}, 'x')).status).toBe(403);
    expect((await send('POST', `${REPO}/git-receive-pack`, 'write', {}, 'x')).status).toBe(200);
  });

  it.each([
    ['a REST path that ends like git', '/rest/api/1.0/projects/P/repos/git-upload-pack', UPLOAD_PACK],
    ['a REST path that ends like a fork', '/rest/api/1.0/projects/P/repos/r/git-upload-pack', UPLOAD_PACK],
    ['a path outside the git prefix', '/other/proj/repo.git/git-upload-pack', UPLOAD_PACK],
    ['a git path too deep to be a repository', '/scm/a/b/c/git-upload-pack', UPLOAD_PACK],
    ['the git path without the git content type', `${REPO}/git-upload-pack`, {}],
    ['the git path with a JSON body', `${REPO}/git-upload-pack`, { 'Content-Type': 'application/json' }],
    [
      'an LFS batch outside a repository',
      '/rest/api/1.0/info/lfs/objects/batch',
      { 'Content-Type': 'application/vnd.git-lfs+json' },
    ],
    [
      'an LFS batch without the LFS content type',
      `${REPO}/info/lfs/objects/batch`,
      { 'Content-Type': 'application/json' },
    ],
  ])('treats a read-looking POST as a write: %s', async (_what, path, headers) => {
    const body = JSON.stringify({ operation: 'download', objects: [] });
    expect((await send('POST', path, 'read', headers, body)).status).toBe(403);
    expect((await send('POST', path, 'write', headers, body)).status).toBe(200);
  });

  it.each([
    `${REPO}/info/refs?service=git-upload-pack&service=git-receive-pack`,
    `${REPO}/info/refs?service=git-upload-pack&service=git-upload-pack`,
    `${REPO}/info/refs?service=GIT-UPLOAD-PACK`,
    `${REPO}/info/refs?service=`,
  ])('treats the ambiguous GET %s as a write', async (path) => {
    expect((await send('GET', path, 'read')).status).toBe(403);
  });

  it.each([
    `${REPO}/git-receive-pack/../git-upload-pack`,
    `${REPO}/git-receive-pack/./git-upload-pack`,
    `${REPO}/git-receive-pack%2F..%2Fgit-upload-pack`,
    `${REPO}/git%2Dupload-pack`,
    `${REPO}//git-upload-pack`,
    `${REPO}/git-upload-pack?x=1`,
    `${REPO}/git-upload-pack/`,
    `${REPO}%5Cgit-upload-pack`,
  ])('treats the POST %s, not exactly what it claims, as a write', async (path) => {
    expect((await send('POST', path, 'read', {}, 'x')).status).toBe(403);
  });

  it('reads a Git LFS batch body without consuming it: download is a read, upload a write', async () => {
    const batch = `${REPO}/info/lfs/objects/batch`;
    const headers = { 'Content-Type': 'application/vnd.git-lfs+json' };
    const download = JSON.stringify({ operation: 'download', objects: [{ oid: 'a'.repeat(64), size: 1 }] });
    const res = await send('POST', batch, 'read', headers, download);
    expect(res.status).toBe(200);
    expect(res.body.body).toBe(download);
    expect((await send('POST', batch, 'read', headers, JSON.stringify({ operation: 'upload' }))).status).toBe(
      403,
    );
    expect((await send('POST', batch, 'read', headers, '{"operation":"download"')).status).toBe(403);
    expect(
      (await send('POST', batch, 'read', headers, JSON.stringify({ operation: ['download'] }))).status,
    ).toBe(403);
    const upload = await send('POST', batch, 'write', headers, JSON.stringify({ operation: 'upload' }));
    expect(upload.body.body).toBe(JSON.stringify({ operation: 'upload' }));
  });

  it('treats LFS object GETs as reads and object PUTs and lock changes as writes', async () => {
    expect((await send('GET', `${REPO}/info/lfs/objects/${'a'.repeat(64)}`, 'read')).status).toBe(200);
    expect((await send('PUT', `${REPO}/info/lfs/objects/${'a'.repeat(64)}`, 'read', {}, 'x')).status).toBe(
      403,
    );
    expect((await send('POST', `${REPO}/info/lfs/locks`, 'read', {}, '{}')).status).toBe(403);
    expect((await send('POST', `${REPO}/info/lfs/locks/verify`, 'read', {}, '{}')).status).toBe(403);
  });

  it('does not judge password or anonymous requests', async () => {
    expect((await request(app).delete('/rest/x')).status).toBe(200);
    expect((await request(app).delete('/rest/x').set('Authorization', basic('a', 'pw'))).status).toBe(200);
  });

  it('throws at startup on a bad extra method', () => {
    expect(() => requireScope({ extraMethods: { PROPFIND: 'admin' as never } })).toThrow(
      /extraMethods\.PROPFIND/,
    );
  });
});

describe('requireScope properties', () => {
  const tokens = new TokenService({
    store: new MemoryTokenStore(),
    hasher: sha256Hasher(),
    tokenPrefix: 'bbt',
  });
  const app = echoApp(
    EXPRESS_VERSIONS[1]![1],
    extractCredentials(),
    authenticateToken({ tokens }),
    requireScope(),
  );
  const readToken = tokens
    .create({ user: 'alice', name: 'r', scope: 'read' })
    .then((t) => `Bearer ${t.token}`);
  const segment = fc.stringMatching(/^[A-Za-z0-9._~%-]{1,12}$/);

  it('never lowers the scope when an override header, a receive-pack service, a suffix or an encoded segment is added', async () => {
    const auth = await readToken;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
        fc.constantFrom(
          `${REPO}/git-upload-pack`,
          `${REPO}/info/refs`,
          '/rest/api/1.0/projects',
          `${REPO}/info/lfs/objects/batch`,
        ),
        fc.constantFrom('override', 'service', 'suffix', 'encoded'),
        segment,
        async (method, path, change, extra) => {
          const base = await request(app)
            [method.toLowerCase() as 'get'](path)
            .set('Authorization', auth)
            .send('{}');
          let req: request.Test;
          if (change === 'override') {
            req = request(app)[method.toLowerCase() as 'get'](path).set('X-HTTP-Method-Override', 'DELETE');
          } else if (change === 'service') {
            req = request(app)[method.toLowerCase() as 'get'](`${path}?service=git-receive-pack`);
          } else if (change === 'suffix') {
            req = request(app)[method.toLowerCase() as 'get'](`${path}/${extra}`);
          } else {
            req = request(app)[method.toLowerCase() as 'get'](`${path.replace('/scm/', '/scm/%2e%2e/')}`);
          }
          const changed = await req.set('Authorization', auth).send('{}');
          // With a read token: where the base needed write, so does the changed request;
          // an override to DELETE or a receive-pack service always needs write.
          if (base.status !== 200) expect(changed.status).not.toBe(200);
          if (change === 'override' || change === 'service') expect(changed.status).not.toBe(200);
        },
      ),
      { numRuns: runs },
    );
  });
});
