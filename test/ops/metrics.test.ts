import express from 'express';
import { Redis } from 'ioredis';
import { collectDefaultMetrics, Registry } from 'prom-client';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTokenGate, type TokenGateOptions } from '../../lib/gate/create-token-gate.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { generateToken } from '../../lib/tokens/format.js';
import { CACHE_TIMING_SAMPLE } from '../../lib/tokens/verifier.js';
import { basic } from '../support/apps.js';
import { readScrape } from '../support/prometheus-text.js';
import { openRedisStore } from '../support/redis-store.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A real store that can be switched off: while `down`, every call fails as a dead backend would. */
function switchable(inner: TokenStore) {
  const state = { down: false };
  const store = new Proxy(inner, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || key === 'subscribe' || key === 'close') return value;
      return (...args: unknown[]) =>
        state.down ? Promise.reject(new Error('connection refused')) : value.apply(target, args);
    },
  });
  return { store, state };
}

function gateApp(options: TokenGateOptions) {
  const gate = createTokenGate(options);
  cleanups.push(() => gate.close());
  const app = express();
  app.get('/metrics', gate.metricsHandler());
  app.use('/tokens', (req, _res, next) => {
    const user = req.headers['x-test-user'];
    if (typeof user === 'string') (req as { user?: unknown }).user = user;
    next();
  });
  app.use('/tokens', gate.router());
  app.use('/rest', gate.protect(), (_req, res) => {
    res.json({ ok: true });
  });
  const scrape = async () => {
    const res = await request(app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.headers['cache-control']).toBe('no-store');
    return readScrape(res.text);
  };
  return { gate, app, scrape };
}

const decisions = 'express_api_tokens_decisions_total';

describe('metrics', () => {
  it('count every decision of protect() by outcome and reason, exactly as sent', async () => {
    const { store, state } = switchable(new MemoryTokenStore());
    const { gate, app, scrape } = gateApp({
      store,
      metrics: true,
      blockPasswordAuth: true,
      groups: { alice: ['devs'] },
      permissions: { useTokens: ['devs'] },
      ipAllowlist: ['127.0.0.0/8', '::1'],
    });
    const read = (await gate.tokens.create({ user: 'alice', name: 'ci', scope: 'read' })).token;
    const outsider = (await gate.tokens.create({ user: 'bob', name: 'ci', scope: 'write' })).token;
    const unused = (await gate.tokens.create({ user: 'alice', name: 'spare', scope: 'read' })).token;
    const other = createTokenGate({ store: new MemoryTokenStore() });
    const foreign = (await other.tokens.create({ user: 'alice', name: 'x', scope: 'read' })).token;
    await other.close();
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const send = async (times: number, method: 'get' | 'post', headers: Record<string, string>) => {
      for (let i = 0; i < times; i++) await request(app)[method]('/rest/api').set(headers);
    };

    await send(40, 'get', bearer(read)); // passed: token
    await send(3, 'get', {}); // passed: anonymous
    await send(4, 'post', bearer(read)); // SCOPE_INSUFFICIENT
    await send(5, 'get', bearer(foreign)); // TOKEN_INVALID (unknown id)
    await send(2, 'get', bearer('bbt_not-a-token')); // TOKEN_INVALID (malformed)
    await send(2, 'get', { authorization: basic('alice', 'hunter2') }); // PASSWORD_AUTH_DISABLED
    await send(1, 'get', { authorization: 'Basic %%%' }); // CREDENTIALS_MALFORMED
    await send(2, 'get', bearer(outsider)); // GROUP_REQUIRED
    await send(1, 'get', { ...bearer(read), 'x-forwarded-for': '1.2.3.4' }); // passes: not a trusted proxy
    state.down = true;
    await send(3, 'get', bearer(unused)); // STORE_UNAVAILABLE: a token only the store can judge
    await send(2, 'get', bearer(read)); // still passes: the verified cache answers
    state.down = false;

    const s = await scrape();
    expect(s.value(decisions, { outcome: 'passed', reason: 'token' })).toBe(43);
    expect(s.value(decisions, { outcome: 'passed', reason: 'anonymous' })).toBe(3);
    expect(s.value(decisions, { outcome: 'passed', reason: 'password' })).toBe(0);
    expect(s.value(decisions, { outcome: 'refused', reason: 'SCOPE_INSUFFICIENT' })).toBe(4);
    expect(s.value(decisions, { outcome: 'refused', reason: 'TOKEN_INVALID' })).toBe(7);
    expect(s.value(decisions, { outcome: 'refused', reason: 'PASSWORD_AUTH_DISABLED' })).toBe(2);
    expect(s.value(decisions, { outcome: 'refused', reason: 'CREDENTIALS_MALFORMED' })).toBe(1);
    expect(s.value(decisions, { outcome: 'refused', reason: 'GROUP_REQUIRED' })).toBe(2);
    expect(s.value(decisions, { outcome: 'store_unavailable', reason: 'STORE_UNAVAILABLE' })).toBe(3);
    const total = s.samples(decisions).reduce((sum, sample) => sum + sample.value, 0);
    expect(total).toBe(40 + 3 + 4 + 5 + 2 + 2 + 1 + 2 + 1 + 3 + 2);

    expect(
      s.value('express_api_tokens_store_errors_total', {
        store: 'memory',
        operation: 'get',
        reason: 'error',
      }),
    ).toBe(3);
    expect(
      s.value('express_api_tokens_store_call_duration_seconds_count', {
        store: 'memory',
        operation: 'putCounted',
      }),
    ).toBe(3);
    // Misses are lookups: the first use of read and of outsider, foreign ×5 (unknown ids are
    // not cached), unused ×3. Every other well-formed token was answered by the cache.
    const misses = 1 + 1 + 5 + 3;
    expect(s.value('express_api_tokens_verified_cache_misses_total')).toBe(misses);
    expect(s.value('express_api_tokens_verified_cache_hits_total')).toBe(39 + 4 + 1 + 1 + 2);
    expect(s.value('express_api_tokens_verified_cache_entries')).toBe(2);
    expect(s.value('express_api_tokens_verify_duration_seconds_count', { path: 'store' })).toBe(misses);
    // One cache lookup in 16 is timed when it hits: lookups 16 and 32 (read) hit, 48 (foreign) missed.
    expect(CACHE_TIMING_SAMPLE).toBe(16);
    expect(s.value('express_api_tokens_verify_duration_seconds_count', { path: 'cache' })).toBe(2);
    expect(s.value('express_api_tokens_token_events_total', { type: 'token.created' })).toBe(3);
    expect(s.value('express_api_tokens_revocation_feed_up')).toBe(1);
  });

  it('count management actions and refusals, and throttle blocks', async () => {
    const { app, scrape } = gateApp({
      metrics: true,
      groups: { admin: ['admins'] },
      permissions: { manageOthers: ['admins'], createWriteTokens: ['admins'] },
      throttle: { maxFailuresPerIp: 3 },
    });
    const as = (user?: string) => (method: 'get' | 'post' | 'patch' | 'delete', path: string) => {
      const req = request(app)[method](`/tokens${path}`);
      return user === undefined ? req : req.set('x-test-user', user);
    };
    const created = await as('alice')('post', '/').send({ name: 'laptop', scope: 'read' });
    expect(created.status).toBe(201);
    expect((await as('alice')('patch', `/${created.body.id}`).send({ name: 'desk' })).status).toBe(200);
    expect((await as('alice')('post', `/${created.body.id}/rotate`).send({ graceMs: 0 })).status).toBe(201);
    expect((await as()('get', '/')).status).toBe(401); // NOT_AUTHENTICATED
    expect((await as('alice')('post', '/').send({ name: 'x', scope: 'write' })).status).toBe(403);
    expect((await as('alice')('get', '/nope1234567')).status).toBe(404);
    const minted = await request(app)
      .post('/tokens')
      .set('authorization', `Bearer ${created.body.token}`)
      .send({ name: 'x', scope: 'read' });
    expect(minted.status).toBe(401); // rotated away with no grace: the token is gone
    // Three failed token attempts from one address block it.
    for (let i = 0; i < 3; i++)
      await request(app)
        .get('/rest/x')
        .set('authorization', `Bearer ${generateToken('bbt').token}`);
    const s = await scrape();
    const events = (type: string) => s.value('express_api_tokens_token_events_total', { type });
    expect(events('token.created')).toBe(2);
    expect(events('token.updated')).toBe(1);
    expect(events('token.rotated')).toBe(1);
    expect(events('token.revoked')).toBe(1);
    const refusals = (code: string) => s.value('express_api_tokens_management_refusals_total', { code });
    expect(refusals('NOT_AUTHENTICATED')).toBe(1);
    expect(refusals('PERMISSION_DENIED')).toBe(1);
    expect(refusals('TOKEN_NOT_FOUND')).toBe(1);
    expect(refusals('TOKEN_INVALID')).toBe(1);
    expect(s.value('express_api_tokens_throttle_blocks_total', { limit: 'address' })).toBe(1);
  });

  it('never put a user, a token id, a path or an address in a label', async () => {
    const { gate, app, scrape } = gateApp({ metrics: true, ipAllowlist: ['10.0.0.0/8'] });
    const { token, info } = await gate.tokens.create({
      user: 'zed-the-user',
      name: 'secret-name',
      scope: 'read',
    });
    await request(app).get('/rest/some/private/path').set('authorization', `Bearer ${token}`);
    await request(app)
      .post('/tokens')
      .set('x-test-user', 'zed-the-user')
      .send({ name: 'other-name', scope: 'read' });
    const { text } = await scrape();
    for (const value of [
      'zed-the-user',
      info.id,
      'secret-name',
      'other-name',
      '/rest',
      'private',
      '127.0.0.1',
      token,
    ])
      expect(text).not.toContain(value);
    for (const line of text.split('\n').filter((l) => l.startsWith('express') || l.startsWith('# TYPE')))
      expect(line).toMatch(/^(# TYPE )?express_api_tokens_/);
  });

  it('go into a registry you pass, beside your own metrics, and leave it when the gate closes', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const gate = createTokenGate({ metrics: { registry } });
    expect(await registry.metrics()).toContain('express_api_tokens_decisions_total');
    expect(await registry.metrics()).toContain('process_cpu_user_seconds_total');
    expect(() => createTokenGate({ metrics: { registry } })).toThrow(/`metrics.registry` already holds/);
    await gate.close();
    expect(await registry.metrics()).not.toContain('express_api_tokens_');
    const again = createTokenGate({ metrics: { registry } });
    await again.close();
  });

  it('are off by default, and the option is checked at startup', async () => {
    const gate = createTokenGate();
    expect(() => gate.metricsHandler()).toThrow(/needs `createTokenGate\(\{ metrics: true \}\)`/);
    await gate.close();
    expect(() => createTokenGate({ metrics: 'yes' as never })).toThrow(/`metrics`/);
    expect(() => createTokenGate({ metrics: { registy: {} } as never })).toThrow(
      /did you mean `metrics.registry`/,
    );
    expect(() => createTokenGate({ metrics: { registry: {} } as never })).toThrow(/`metrics.registry`/);
    const off = createTokenGate({ metrics: false });
    expect(() => off.metricsHandler()).toThrow(TypeError);
    await off.close();
  });

  it('time revocations through the Redis feed and count its messages', async () => {
    const { store, peer, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    cleanups.push(cleanup);
    const { gate, app, scrape } = gateApp({ store, metrics: true });
    while (!(await gate.health()).ready) await new Promise((r) => setTimeout(r, 20));
    const mine = await gate.tokens.create({ user: 'alice', name: 'a', scope: 'read' });
    const theirs = await gate.tokens.create({ user: 'alice', name: 'b', scope: 'read' });
    expect((await request(app).get('/rest/x').set('authorization', `Bearer ${mine.token}`)).status).toBe(200);
    await gate.tokens.revoke(mine.info.id);
    await peer.delete(theirs.info.id); // another instance's revocation
    const received = async () =>
      (await scrape()).value('express_api_tokens_revocations_received_total', { scope: 'token' });
    for (let i = 0; i < 100 && (await received()) < 2; i++) await new Promise((r) => setTimeout(r, 10));
    const s = await scrape();
    expect(s.value('express_api_tokens_revocations_received_total', { scope: 'token' })).toBe(2);
    // Only our own revocation can be timed on one clock.
    expect(s.value('express_api_tokens_revocation_feed_lag_seconds_count')).toBe(1);
    expect(s.value('express_api_tokens_revocation_feed_lag_seconds_sum')).toBeLessThan(1);
    expect(
      s.value('express_api_tokens_store_call_duration_seconds_count', {
        store: 'redis',
        operation: 'delete',
      }),
    ).toBe(1);
    expect((await request(app).get('/rest/x').set('authorization', `Bearer ${mine.token}`)).status).toBe(401);
  });
});
