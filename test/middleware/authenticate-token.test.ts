import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { authenticateToken } from '../../lib/middleware/authenticate-token.js';
import { clientIp } from '../../lib/middleware/client-ip.js';
import { extractCredentials } from '../../lib/middleware/extract-credentials.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { basic, EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

const service = (store: TokenStore = new MemoryTokenStore()) =>
  new TokenService({ store, hasher: sha256Hasher(), tokenPrefix: 'bbt', storeTimeoutMs: 200 });

describe.each(EXPRESS_VERSIONS)('authenticateToken on %s', (_name, makeApp) => {
  const tokens = service();
  const events: AuditEvent[] = [];
  const app = echoApp(
    makeApp,
    extractCredentials(),
    authenticateToken({ tokens, onEvent: (e) => events.push(e) }),
  );

  it('authenticates Bearer and Basic (owner in any case, empty, x-token-auth, oauth2) tokens', async () => {
    const { token, info } = await tokens.create({ user: 'Alice', name: 'x', scope: 'read' });
    for (const header of [
      `Bearer ${token}`,
      `bearer ${token}`,
      basic('alice', token),
      basic('ALICE', token),
      basic('', token),
      basic('x-token-auth', token),
      basic('oauth2', token),
      basic(token, ''),
      basic(token, 'x-oauth-basic'),
    ]) {
      const res = await request(app).get('/').set('Authorization', header);
      expect(res.status).toBe(200);
      expect(res.body.auth).toMatchObject({
        kind: 'token',
        user: 'Alice',
        token: { id: info.id, scope: 'read' },
      });
    }
  });

  it('refuses a Basic user part that names someone else', async () => {
    const { token } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    const res = await request(app).get('/').set('Authorization', basic('mallory', token));
    expect(res.status).toBe(401);
    expect(res.body.errors[0].code).toBe('TOKEN_USER_MISMATCH');
  });

  it('gives unknown, revoked, tampered and expired tokens the very same answer', async () => {
    const live = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    const revoked = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    await tokens.revoke(revoked.info.id);
    const unknown = await service().create({ user: 'alice', name: 'x', scope: 'read' });
    const tampered = `${live.token.slice(0, 20)}${live.token[20] === 'a' ? 'b' : 'a'}${live.token.slice(21)}`;
    const bodies = new Set<string>();
    for (const token of [unknown.token, revoked.token, tampered, 'bbt_short']) {
      const res = await request(app).get('/').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toContain('Bearer');
      bodies.add(JSON.stringify(res.body));
    }
    expect(bodies.size).toBe(1);
    expect([...bodies][0]).toContain('TOKEN_INVALID');
  });

  it('reports auth.denied without any secret', async () => {
    events.length = 0;
    const { token } = await service().create({ user: 'alice', name: 'x', scope: 'read' });
    await request(app).get('/rest/x?q=1').set('Authorization', `Bearer ${token}`);
    expect(events).toEqual([
      expect.objectContaining({
        type: 'auth.denied',
        code: 'TOKEN_INVALID',
        method: 'GET',
        path: '/rest/x',
        tokenId: token.slice(4, 15),
      }),
    ]);
    expect(JSON.stringify(events)).not.toContain(token.slice(15));
  });

  it('answers 503, never 401 or 200, when the store fails or hangs', async () => {
    const { token } = await service().create({ user: 'alice', name: 'x', scope: 'read' });
    for (const broken of [
      (() => Promise.reject(new Error('down'))) as () => Promise<null>,
      () => new Promise<null>(() => {}),
    ]) {
      const failing = echoApp(
        makeApp,
        extractCredentials(),
        authenticateToken({ tokens: service(Object.assign(new MemoryTokenStore(), { get: broken })) }),
      );
      const res = await request(failing).get('/').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.body.errors[0].code).toBe('STORE_UNAVAILABLE');
    }
  });

  it('records the last use with the client address', async () => {
    const { token, info } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    const withIp = echoApp(
      makeApp,
      clientIp({ trustedProxies: ['loopback'] }),
      extractCredentials(),
      authenticateToken({ tokens }),
    );
    await request(withIp)
      .get('/')
      .set('Authorization', `Bearer ${token}`)
      .set('X-Forwarded-For', '203.0.113.77');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await tokens.get(info.id)).toMatchObject({
      lastUsedIp: '203.0.113.77',
      lastUsedAt: expect.any(String),
    });
  });

  it('throws at startup without a token service', () => {
    expect(() => authenticateToken({} as never)).toThrow(/`tokens`/);
  });
});
