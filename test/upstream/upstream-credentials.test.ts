import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoUpstream, startDemoUpstream } from '../../examples/demo-upstream.js';
import { BitbucketTokenApi } from '../../lib/bitbucket/token-api.js';
import type { AuditEvent } from '../../lib/events.js';
import { forwardTo } from '../../lib/forward/index.js';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { authenticateToken } from '../../lib/middleware/authenticate-token.js';
import { extractCredentials } from '../../lib/middleware/extract-credentials.js';
import type { TokenRecord } from '../../lib/model.js';
import { middlewareOf } from '../../lib/request/step.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { PUBLIC_SEAL, sealOf } from '../../lib/tokens/seal.js';
import { TokenService } from '../../lib/tokens/service.js';
import { bitbucketAccessTokens } from '../../lib/upstream/bitbucket-access-tokens.js';
import { CredentialBox } from '../../lib/upstream/credential-box.js';
import { upstreamCredentials } from '../../lib/upstream/upstream-credentials.js';
import { basic, echoApp } from '../support/apps.js';

const KEY = { id: 'k1', key: randomBytes(32) };
const demoPassword = { password: 'demo', slug: 'demo' };

/** Counts decryptions: the real box, instrumented. */
class CountingBox extends CredentialBox {
  opened = 0;
  override open(record: Pick<TokenRecord, 'id' | 'user' | 'upstream'>) {
    this.opened++;
    return super.open(record);
  }
}

describe('protect() in access-token mode, against a Bitbucket that knows only its own tokens', () => {
  let demo: DemoUpstream;
  let gate: TokenGate;
  let app: Express;
  let forwarded = 0;
  const store = new MemoryTokenStore();
  const events: AuditEvent[] = [];

  beforeAll(async () => {
    demo = await startDemoUpstream({ mode: 'access-token' });
    gate = createTokenGate({
      store,
      onEvent: (e) => events.push(e),
      upstream: bitbucketAccessTokens({ baseUrl: demo.url.href, encryptionKeys: [KEY] }),
    });
    app = express();
    app.use(
      ['/rest', '/scm'],
      gate.protect(),
      (_req, _res, next) => {
        forwarded++;
        next();
      },
      forwardTo(demo.url),
    );
  });
  afterAll(async () => {
    await gate.close();
    await demo.close();
  });

  const mint = async (scope: 'read' | 'write' = 'read') => {
    const created = await gate.tokens.create({ user: 'demo', name: 'test', scope, upstream: demoPassword });
    const bitbucketToken = demo.accessTokens!.of('demo').at(-1)!;
    return { ...created, bitbucketToken };
  };

  it('authenticates to a stock Bitbucket with the Bitbucket token behind ours', async () => {
    const { token } = await mint();
    for (const authorization of [`Bearer ${token}`, basic('demo', token), basic('x-token-auth', token)]) {
      const res = await request(app).get('/rest/api/1.0/projects').set('Authorization', authorization);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ mode: 'access-token', user: 'demo', via: 'token' });
    }
  });

  it('is refused by that Bitbucket in the identity-header mode: it ignores X-Forwarded-User', async () => {
    const res = await request(demo.url.origin).get('/rest/api/1.0/projects').set('X-Forwarded-User', 'demo');
    expect(res.status).toBe(401);
    const git = await request(demo.url.origin)
      .get('/scm/demo/repo.git/info/refs?service=git-upload-pack')
      .set('X-Forwarded-User', 'demo');
    expect(git.status).toBe(401);
  });

  it('answers 401 UPSTREAM_TOKEN_REVOKED, in Bitbucket’s shape and as text for git, once Bitbucket revoked its token', async () => {
    const { token, info, bitbucketToken } = await mint();
    demo.accessTokens!.revoke(bitbucketToken.id);
    const before = forwarded;
    const res = await request(app).get('/rest/api/1.0/projects').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBeDefined();
    expect(res.body).toEqual({
      errors: [
        {
          context: null,
          message: expect.stringMatching(
            /^Bitbucket no longer accepts the access token behind this API token/,
          ),
          exceptionName: null,
          code: 'UPSTREAM_TOKEN_REVOKED',
        },
      ],
    });
    expect(events.find((e) => e.type === 'auth.denied' && e.code === 'UPSTREAM_TOKEN_REVOKED')).toMatchObject(
      {
        tokenId: info.id,
        user: 'demo',
      },
    );
    // Known dead: refused at once, without asking Bitbucket again.
    const git = await request(app)
      .get('/scm/demo/repo.git/info/refs?service=git-upload-pack')
      .set('User-Agent', 'git/2.45.0')
      .set('Authorization', basic('demo', token));
    expect(git.status).toBe(401);
    expect(git.headers['content-type']).toMatch(/^text\/plain/);
    expect(git.text).toMatch(/Bitbucket no longer accepts the access token/);
    expect(forwarded).toBe(before + 1);
  });

  it('tells a token expired in Bitbucket apart on git’s path too (Bitbucket’s answer does not say: it is asked)', async () => {
    const { token } = await mint();
    const clock = demo.accessTokens!.now;
    demo.accessTokens!.now = () => Date.now() + 400 * 86_400_000;
    try {
      // A token without expiry never expires: make this one expire.
      demo.accessTokens!.of('demo').at(-1)!.expiryDate = Date.now() + 86_400_000;
      const git = await request(app)
        .get('/scm/demo/repo.git/info/refs?service=git-upload-pack')
        .set('User-Agent', 'git/2.45.0')
        .set('Authorization', `Bearer ${token}`);
      expect(git.status).toBe(401);
      expect(git.text).toMatch(/revoked or expired in Bitbucket/);
    } finally {
      demo.accessTokens!.now = clock;
    }
  });

  it('passes a 401 for a missing Bitbucket permission through unchanged', async () => {
    const { token } = await mint('write');
    const res = await request(app).get('/rest/api/1.0/admin/groups').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(401);
    expect(res.body.errors[0]).toMatchObject({
      exceptionName: 'com.atlassian.bitbucket.AuthorisationException',
      message: 'You are not permitted to access this resource',
    });
    expect(res.headers['x-ausername']).toBe('demo');
  });

  it('answers 409 for a token that has no Bitbucket token behind it', async () => {
    const other = createTokenGate({ store });
    const { token } = await other.tokens.create({ user: 'demo', name: 'old', scope: 'read' });
    await other.close();
    const res = await request(app).get('/rest/api/1.0/projects').set('Authorization', `Bearer ${token}`);
    expect(res.status).toBe(409);
    expect(res.body.errors[0]).toMatchObject({ code: 'UPSTREAM_TOKEN_REQUIRED' });
  });

  it('answers 503 UPSTREAM_CREDENTIAL_UNAVAILABLE, with an event and no secret, when the key is wrong', async () => {
    const { token, info, bitbucketToken } = await mint();
    const seen: AuditEvent[] = [];
    const wrongKey = createTokenGate({
      store,
      onEvent: (e) => seen.push(e),
      upstream: bitbucketAccessTokens({
        baseUrl: demo.url.href,
        encryptionKeys: [{ id: 'k1', key: randomBytes(32) }],
      }),
    });
    const other = express().use('/rest', wrongKey.protect(), forwardTo(demo.url));
    const res = await request(other).get('/rest/api/1.0/projects').set('Authorization', `Bearer ${token}`);
    await wrongKey.close();
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body.errors[0]).toMatchObject({ code: 'UPSTREAM_CREDENTIAL_UNAVAILABLE' });
    expect(seen).toContainEqual(
      expect.objectContaining({
        type: 'auth.denied',
        code: 'UPSTREAM_CREDENTIAL_UNAVAILABLE',
        tokenId: info.id,
      }),
    );
    expect(JSON.stringify([res.body, seen])).not.toContain(bitbucketToken.token);
  });

  it('lets a push through with a write token and refuses it with a read token before Bitbucket sees it', async () => {
    const read = await mint('read');
    const before = forwarded;
    const refused = await request(app)
      .post('/scm/demo/repo.git/git-receive-pack')
      .set('Authorization', `Bearer ${read.token}`)
      .set('Content-Type', 'application/x-git-receive-pack-request')
      .send('0000');
    expect(refused.status).toBe(403);
    expect(forwarded).toBe(before);
  });
});

describe('upstreamCredentials (the request step)', () => {
  const box = new CountingBox([KEY]);
  const store = new MemoryTokenStore();
  const api = new BitbucketTokenApi('http://127.0.0.1:9', 1_000);

  async function tokenWithCredential(tokens: TokenService, bitbucketToken: string) {
    const { token, info } = await tokens.create({ user: 'alice', name: 'x', scope: 'write' });
    const sealed = await box.seal({
      token: bitbucketToken,
      tokenId: '123456789012',
      user: 'alice',
      slug: 'alice',
      ours: info.id,
      expiresAt: null,
      origin: 'minted',
    });
    // Written as the library writes it: the record sealed again (no pepper: the public seal).
    const record = (await store.get(info.id))!;
    await store.update(info.id, {
      upstream: sealed,
      seal: sealOf({ ...record, upstream: sealed }, PUBLIC_SEAL),
    });
    return token;
  }

  const appWith = (tokens: TokenService) =>
    echoApp(
      express,
      extractCredentials(),
      authenticateToken({ tokens }),
      middlewareOf(upstreamCredentials({ box, api, onEvent: undefined })),
    );

  it('replaces our token by the Bitbucket token and strips identity headers on every request', async () => {
    const tokens = new TokenService({ store, hasher: sha256Hasher() });
    const token = await tokenWithCredential(tokens, 'BITBUCKET-TOKEN-1');
    const res = await request(appWith(tokens))
      .get('/')
      .set('Authorization', `Bearer ${token}`)
      .set('X-Forwarded-User', 'admin')
      .set('x_forwarded_user_jwt', 'forged');
    expect(res.body.headers.authorization).toBe('Bearer BITBUCKET-TOKEN-1');
    expect(JSON.stringify(res.body.rawHeaders)).not.toContain(token);
    expect(JSON.stringify(res.body.rawHeaders).toLowerCase()).not.toMatch(/x.forwarded.user/);
    const password = await request(appWith(tokens))
      .get('/')
      .set('Authorization', basic('alice', 'pw'))
      .set('X-Forwarded-User', 'admin');
    expect(password.body.headers.authorization).toBe(basic('alice', 'pw'));
    expect(password.body.headers['x-forwarded-user']).toBeUndefined();
  });

  it('decrypts once per verified-cache entry, not per request', async () => {
    const cached = new TokenService({ store, hasher: sha256Hasher() });
    const token = await tokenWithCredential(cached, 'BITBUCKET-TOKEN-2');
    const app = appWith(cached);
    box.opened = 0;
    for (let i = 0; i < 20; i++) await request(app).get('/').set('Authorization', `Bearer ${token}`);
    expect(box.opened).toBe(1);

    const uncached = new TokenService({ store, hasher: sha256Hasher(), cache: { maxEntries: 0 } });
    const app2 = appWith(uncached);
    box.opened = 0;
    for (let i = 0; i < 5; i++) await request(app2).get('/').set('Authorization', `Bearer ${token}`);
    expect(box.opened).toBe(5);
  });
});

describe('judging a 401 when Bitbucket cannot be asked', () => {
  let server: Server;
  let url: URL;
  beforeAll(async () => {
    // A Bitbucket that mints, answers 401 on /rest/thing, and fails when asked who the caller is.
    server = createServer((req, res) => {
      if (req.method === 'PUT') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(
          JSON.stringify({
            id: '123456789012',
            token: Buffer.from('123456789012:secret').toString('base64'),
          }),
        );
      } else if (req.url?.startsWith('/rest/thing')) {
        res.writeHead(401, { 'Content-Type': 'text/plain' });
        res.end('Nope.\n');
      } else {
        res.writeHead(500);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('passes Bitbucket’s own answer on rather than guess', async () => {
    const gate = createTokenGate({
      upstream: bitbucketAccessTokens({ baseUrl: url.href, encryptionKeys: [KEY] }),
    });
    const { token } = await gate.tokens.create({
      user: 'demo',
      name: 'x',
      scope: 'read',
      upstream: demoPassword,
    });
    const app = express().use('/rest', gate.protect(), forwardTo(url));
    const res = await request(app).get('/rest/thing').set('Authorization', `Bearer ${token}`);
    await gate.close();
    expect(res.status).toBe(401);
    expect(res.text).toBe('Nope.\n');
  });
});
