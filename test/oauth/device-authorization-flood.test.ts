import express from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createTokenGate, MemoryTokenStore, type TokenGate } from '../../lib/index.js';

/**
 * The device authorization endpoint is the OAuth server's one unauthenticated write: each call
 * stores a device code and a user code for ten minutes. Unbounded, one client could fill the
 * shared store (and crowd the user-code space that people type into).
 */
describe('device authorization requests per address', () => {
  let gate: TokenGate | undefined;
  afterEach(async () => {
    await gate?.close();
  });

  function app(options: Parameters<TokenGate['oauth']>[0] = {}) {
    gate = createTokenGate({ store: new MemoryTokenStore(), trustedProxies: ['127.0.0.1', '::1'] });
    const server = express();
    server.use('/oauth', gate.oauth(options));
    return server;
  }
  const ask = (server: express.Express, from: string) =>
    request(server)
      .post('/oauth/device_authorization')
      .set('X-Forwarded-For', from)
      .type('form')
      .send({ client_id: 'git' });

  it('answers 429 temporarily_unavailable past the limit, counting an IPv6 client by its /64', async () => {
    const server = app({ maxDeviceAuthorizationsPerIp: 3 });
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) statuses.push((await ask(server, `2001:db8:7:7::${i}`)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const refused = await ask(server, '2001:db8:7:7::99');
    expect(refused.body).toEqual({ error: 'temporarily_unavailable', error_description: expect.any(String) });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.headers['cache-control']).toBe('no-store');
    // Someone else is not held back.
    expect((await ask(server, '198.51.100.7')).status).toBe(200);
  });

  it('allows 30 a minute by default, and checks the option at startup', async () => {
    const server = app();
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) statuses.push((await ask(server, '198.51.100.8')).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(30);
    expect(statuses.at(-1)).toBe(429);
    expect(() => createTokenGate().oauth({ maxDeviceAuthorizationsPerIp: 0 })).toThrow(
      /`maxDeviceAuthorizationsPerIp`/,
    );
  });
});
