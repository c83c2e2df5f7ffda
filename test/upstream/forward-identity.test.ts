import { generateKeyPairSync } from 'node:crypto';
import { jwtVerify } from 'jose';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { authenticateToken } from '../../lib/middleware/authenticate-token.js';
import { extractCredentials } from '../../lib/middleware/extract-credentials.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { forwardIdentity } from '../../lib/upstream/forward-identity.js';
import { basic, EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

const SECRET = 'a-secret-of-at-least-32-bytes-long!!';

describe.each(EXPRESS_VERSIONS)('forwardIdentity on %s', (_name, makeApp) => {
  const tokens = new TokenService({
    store: new MemoryTokenStore(),
    hasher: sha256Hasher(),
    tokenPrefix: 'bbt',
  });
  const app = (options: Parameters<typeof forwardIdentity>[0] = {}) =>
    echoApp(makeApp, extractCredentials(), authenticateToken({ tokens }), forwardIdentity(options));
  const bearer = async () =>
    `Bearer ${(await tokens.create({ user: 'alice', name: 'x', scope: 'write' })).token}`;

  it('sets the identity header and removes the token’s Authorization header', async () => {
    const res = await request(app())
      .get('/')
      .set('Authorization', await bearer());
    expect(res.body.headers['x-forwarded-user']).toBe('alice');
    expect(res.body.headers.authorization).toBeUndefined();
    expect(res.body.rawHeaders.map((h: string) => h.toLowerCase())).not.toContain('authorization');
  });

  it('strips every client-sent copy of the identity header, in any letter case', async () => {
    const spoof = await request(app())
      .get('/')
      .set('X-FORWARDED-USER', 'admin')
      .set('x-forwarded-user-jwt', 'forged');
    expect(spoof.body.headers['x-forwarded-user']).toBeUndefined();
    expect(JSON.stringify(spoof.body.rawHeaders).toLowerCase()).not.toContain('x-forwarded-user');
    const withToken = await request(app())
      .get('/')
      .set('Authorization', await bearer())
      .set('x-Forwarded-User', 'admin');
    expect(withToken.body.headers['x-forwarded-user']).toBe('alice');
    expect(
      withToken.body.rawHeaders.filter((h: string) => h.toLowerCase() === 'x-forwarded-user'),
    ).toHaveLength(1);
  });

  it('leaves a password’s Authorization for the upstream to check', async () => {
    const res = await request(app()).get('/').set('Authorization', basic('alice', 'pw'));
    expect(res.body.headers.authorization).toBe(basic('alice', 'pw'));
    expect(res.body.headers['x-forwarded-user']).toBeUndefined();
  });

  it('never forwards an unverified token either', async () => {
    const alone = echoApp(makeApp, extractCredentials(), forwardIdentity());
    const res = await request(alone).get('/').set('Authorization', 'Bearer bbt_unverified');
    expect(res.body.headers.authorization).toBeUndefined();
  });

  it('adds an HS256 JWT the upstream can verify', async () => {
    const res = await request(
      app({ header: 'X-Remote-User', jwt: { key: SECRET, issuer: 'proxy', audience: 'bitbucket' } }),
    )
      .get('/')
      .set('Authorization', await bearer());
    expect(res.body.headers['x-remote-user']).toBe('alice');
    const { payload } = await jwtVerify(
      res.body.headers['x-forwarded-user-jwt'],
      new TextEncoder().encode(SECRET),
      {
        issuer: 'proxy',
        audience: 'bitbucket',
      },
    );
    expect(payload).toMatchObject({ sub: 'alice', scope: 'write', tid: expect.any(String) });
    expect(payload.exp! - payload.iat!).toBe(60);
  });

  it('adds an EdDSA JWT verifiable with the public key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const res = await request(app({ jwt: { key: privateKey, header: 'x-identity' } }))
      .get('/')
      .set('Authorization', await bearer());
    const { payload, protectedHeader } = await jwtVerify(res.body.headers['x-identity'], publicKey);
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload.sub).toBe('alice');
  });

  it('throws at startup on a weak key or a bad header name', () => {
    expect(() => forwardIdentity({ jwt: { key: 'short' } })).toThrow(/`jwt.key`/);
    expect(() => forwardIdentity({ header: 'authorization' })).toThrow(/`header`/);
    expect(() => forwardIdentity({ jwt: { key: SECRET, ttlSeconds: 0 } })).toThrow(/ttlSeconds/);
  });
});
