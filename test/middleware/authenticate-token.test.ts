import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { authenticateToken } from '../../lib/middleware/authenticate-token.js';
import { clientIp } from '../../lib/middleware/client-ip.js';
import { extractCredentials } from '../../lib/middleware/extract-credentials.js';
import { FailureThrottle } from '../../lib/request/throttle.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { assembleToken, generateToken } from '../../lib/tokens/format.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { basic, EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { countCalls } from '../support/count-calls.js';

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

  it('authenticates Bearer and Basic (owner in any case, empty, x-token-auth) tokens', async () => {
    const { token, info } = await tokens.create({ user: 'Alice', name: 'x', scope: 'read' });
    for (const header of [
      `Bearer ${token}`,
      `bearer ${token}`,
      basic('alice', token),
      basic('ALICE', token),
      basic('', token),
      basic('x-token-auth', token),
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
      { get: () => Promise.reject(new Error('down')) },
      { get: () => new Promise(() => {}) },
    ]) {
      const failing = echoApp(
        makeApp,
        extractCredentials(),
        authenticateToken({ tokens: service(broken as unknown as TokenStore) }),
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

describe('brute-force throttling', () => {
  const setup = (options = {}) => {
    const { target: counted, count } = countCalls<TokenStore>(new MemoryTokenStore());
    const tokens = service(counted);
    const throttle = new FailureThrottle(counted, 'bbt', {
      maxFailuresPerIp: 5,
      maxFailuresPerToken: 8,
      ...options,
    });
    const app = echoApp(
      EXPRESS_VERSIONS[1]![1],
      clientIp({ trustedProxies: ['loopback'] }),
      extractCredentials(),
      authenticateToken({ tokens, throttle }),
    );
    return { tokens, app, lookups: () => count('get') };
  };
  const from = (app: ReturnType<typeof setup>['app'], ip: string, auth: string) =>
    request(app).get('/').set('X-Forwarded-For', ip).set('Authorization', auth);

  it('answers 429 with Retry-After past the limit, before any store lookup', async () => {
    const { app, lookups } = setup();
    const wrong = await service().create({ user: 'x', name: 'x', scope: 'read' });
    for (let i = 0; i < 5; i++)
      expect((await from(app, '198.51.100.1', `Bearer ${wrong.token}`)).status).toBe(401);
    const before = lookups();
    const res = await from(app, '198.51.100.1', `Bearer ${wrong.token}`);
    expect(res.status).toBe(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(res.body.errors[0].code).toBe('TOO_MANY_ATTEMPTS');
    expect(lookups()).toBe(before);
  });

  it('counts an IPv6 /64 as one client, and never slows a valid token from another address', async () => {
    const { app, tokens } = setup();
    const { token } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    for (let i = 0; i < 5; i++) await from(app, `2001:db8:1:2::${i + 1}`, 'Bearer bbt_garbage');
    expect((await from(app, '2001:db8:1:2:ffff::1', `Bearer ${token}`)).status).toBe(429);
    expect((await from(app, '2001:db8:1:3::1', `Bearer ${token}`)).status).toBe(200);
    expect((await from(app, '203.0.113.1', `Bearer ${token}`)).status).toBe(200);
  });

  it('blocks a token id under attack from many addresses, but not its owner’s known token', async () => {
    const { app, tokens } = setup({ maxFailuresPerIp: 1000 });
    const { token } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    expect((await from(app, '203.0.113.1', `Bearer ${token}`)).status).toBe(200);
    // Same id, other secrets, valid checksums: what an attacker who knows the id can send.
    const id = token.slice(4, 15);
    const forged = Array.from({ length: 9 }, () => assembleToken('bbt', id, generateToken('bbt').secret));
    for (let i = 0; i < 8; i++) {
      expect((await from(app, `198.51.100.${i + 1}`, `Bearer ${forged[i]}`)).status).toBe(401);
    }
    expect((await from(app, '198.51.100.200', `Bearer ${forged[8]}`)).status).toBe(429);
    expect((await from(app, '203.0.113.9', `Bearer ${token}`)).status).toBe(200);
  });

  it('never keys the throttle on a header sent by an untrusted peer', async () => {
    const { tokens } = setup();
    const throttle = new FailureThrottle(new MemoryTokenStore(), 'bbt', { maxFailuresPerIp: 3 });
    // No trusted proxies: X-Forwarded-For is the client's own claim and must not spread its failures.
    const app = echoApp(
      EXPRESS_VERSIONS[1]![1],
      clientIp(),
      extractCredentials(),
      authenticateToken({ tokens, throttle }),
    );
    for (let i = 0; i < 3; i++) await from(app, `198.51.100.${i + 1}`, 'Bearer bbt_garbage');
    expect((await from(app, '198.51.100.99', 'Bearer bbt_garbage')).status).toBe(429);
  });

  it('refuses bad throttle options at startup', () => {
    expect(() => new FailureThrottle(new MemoryTokenStore(), 'bbt', { windowMs: 0 })).toThrow(
      /throttle.windowMs/,
    );
  });
});
