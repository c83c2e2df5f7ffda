import { afterAll, describe, expect, it, vi } from 'vitest';
import { startProxy } from '../../examples/bitbucket-proxy.js';
import { generateToken } from '../../lib/tokens/format.js';
import { basic } from '../support/apps.js';
import { readScrape } from '../support/prometheus-text.js';
import { startRedisServer } from '../support/redis-server.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('the example proxy’s operations endpoints', () => {
  it('serves /metrics whose counts match a mixed load with a Redis outage, and /healthz and /readyz', async () => {
    const redis = await startRedisServer();
    cleanups.push(() => redis.stop());
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    cleanups.push(async () => log.mockRestore());
    const proxy = await startProxy({
      PORT: '0',
      TOKEN_STORE: redis.url,
      TOKEN_PEPPER: 'ops-test-pepper',
      IP_ALLOWLIST: '10.0.0.0/8',
      TRUSTED_PROXIES: '127.0.0.1,::1',
      USE_TOKENS_GROUPS: 'developers',
    });
    cleanups.push(() => proxy.close());
    const { url, gate } = proxy;
    // A fresh store: this start made (and printed) both demo tokens.
    const readToken = proxy.demo!.readToken!;
    const writeToken = proxy.demo!.writeToken!;
    for (let i = 0; i < 100 && !(await gate.health()).ready; i++) await new Promise((r) => setTimeout(r, 20));
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      ready: true,
      live: true,
      checks: { store: { kind: 'redis' } },
    });

    const sent = { passed: { token: 0, anonymous: 0 }, refused: {} as Record<string, number> };
    const call = async (
      times: number,
      init: { method?: string; authorization?: string; from?: string },
      expected: number | string,
    ) => {
      for (let i = 0; i < times; i++) {
        const res = await fetch(`${url}/rest/api/1.0/projects`, {
          method: init.method ?? 'GET',
          headers: {
            'x-forwarded-for': init.from ?? '10.1.2.3',
            ...(init.authorization === undefined ? {} : { authorization: init.authorization }),
          },
        });
        const body = await res.text();
        if (typeof expected === 'number') expect(res.status).toBe(expected);
        else {
          expect(JSON.parse(body).errors[0].code).toBe(expected);
          sent.refused[expected] = (sent.refused[expected] ?? 0) + 1;
        }
      }
    };
    const bearer = (token: string) => `Bearer ${token}`;
    const outsider = (await gate.tokens.create({ user: 'eve', name: 'x', scope: 'read' })).token;
    const spare = (await gate.tokens.create({ user: 'demo', name: 'spare', scope: 'read' })).token;

    await call(25, { authorization: bearer(readToken) }, 200);
    await call(5, { method: 'POST', authorization: bearer(writeToken) }, 200);
    sent.passed.token += 30;
    await call(2, {}, 200); // anonymous requests go to Bitbucket, which decides
    sent.passed.anonymous += 2;
    await call(3, { method: 'POST', authorization: bearer(readToken) }, 'SCOPE_INSUFFICIENT');
    await call(4, { authorization: bearer(generateToken('bbt').token) }, 'TOKEN_INVALID');
    await call(2, { authorization: basic('demo', 'demo') }, 'PASSWORD_AUTH_DISABLED');
    await call(1, { authorization: basic('mallory', readToken) }, 'TOKEN_USER_MISMATCH');
    await call(1, { authorization: 'Basic %%%' }, 'CREDENTIALS_MALFORMED');
    await call(2, { authorization: bearer(readToken), from: '203.0.113.9' }, 'IP_NOT_ALLOWED');
    await call(2, { authorization: bearer(outsider) }, 'GROUP_REQUIRED');

    // Management: one token created, one refusal, one failed login: all audit events on the log.
    const created = await fetch(`${url}/tokens/api`, {
      method: 'POST',
      headers: { authorization: basic('demo', 'demo'), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'laptop', scope: 'read' }),
    });
    expect(created.status).toBe(201);
    const missing = await fetch(`${url}/tokens/api/nope1234567`, {
      headers: { authorization: basic('demo', 'demo') },
    });
    expect(missing.status).toBe(404);
    const wrong = await fetch(`${url}/tokens/api`, { headers: { authorization: basic('demo', 'wrong') } });
    expect(wrong.status).toBe(401);
    const logged = log.mock.calls.map(([line]) => JSON.parse(String(line)));
    expect(logged).toContainEqual(expect.objectContaining({ type: 'token.created', name: 'laptop' }));
    expect(logged).toContainEqual(expect.objectContaining({ type: 'auth.denied', code: 'TOKEN_NOT_FOUND' }));
    expect(logged).toContainEqual(
      expect.objectContaining({ type: 'auth.denied', code: 'PASSWORD_INVALID', user: 'demo' }),
    );

    // The store goes away: a token only the store can judge is refused with 503, never passed.
    await redis.stop(true);
    await call(3, { authorization: bearer(spare) }, 'STORE_UNAVAILABLE');
    const notReady = await fetch(`${url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({
      ready: false,
      live: true,
      checks: { store: { ok: false } },
    });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    const scraped = await fetch(`${url}/metrics`);
    expect(scraped.status).toBe(200);
    const s = readScrape(await scraped.text());
    const decisions = 'express_api_tokens_decisions_total';
    expect(s.value(decisions, { outcome: 'passed', reason: 'token' })).toBe(sent.passed.token);
    expect(s.value(decisions, { outcome: 'passed', reason: 'anonymous' })).toBe(sent.passed.anonymous);
    for (const [code, count] of Object.entries(sent.refused)) {
      const outcome = code === 'STORE_UNAVAILABLE' ? 'store_unavailable' : 'refused';
      expect({ code, count: s.value(decisions, { outcome, reason: code }) }).toEqual({ code, count });
    }
    const counted = s.samples(decisions).reduce((sum, sample) => sum + sample.value, 0);
    const total =
      sent.passed.token + sent.passed.anonymous + Object.values(sent.refused).reduce((a, b) => a + b);
    expect(counted).toBe(total);
    expect(s.value('express_api_tokens_token_events_total', { type: 'token.created' })).toBe(2 + 2 + 1);
    expect(s.value('express_api_tokens_management_refusals_total', { code: 'TOKEN_NOT_FOUND' })).toBe(1);
    expect(
      s.value('express_api_tokens_store_errors_total', { store: 'redis', operation: 'get', reason: 'error' }),
    ).toBeGreaterThanOrEqual(3);
    expect(s.value('express_api_tokens_verified_cache_hits_total')).toBeGreaterThan(25);
  });
});
