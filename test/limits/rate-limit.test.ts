import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { batchFor } from '../../lib/limits/lease-counter.js';
import type { RateLimitOptions } from '../../lib/limits/options.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { dropSchema, freshSchema, testPool } from '../support/postgres.js';
import { openRedisStore } from '../support/redis-store.js';

const express5 = EXPRESS_VERSIONS[1]![1];
const PER_MINUTE_100: RateLimitOptions = { perToken: { requests: 100, windowSeconds: 60 } };

interface Fleet {
  stores: [TokenStore, TokenStore];
  cleanup(): Promise<void>;
}

/** Two proxies of one fleet: each its own gate, app and store connection, one backend. */
function twoInstances(
  stores: [TokenStore, TokenStore],
  rateLimit: RateLimitOptions,
  events: AuditEvent[] = [],
) {
  const gates = stores.map((store) =>
    createTokenGate({ store, rateLimit, throttle: false, onEvent: (e) => events.push(e) }),
  ) as [TokenGate, TokenGate];
  const apps = gates.map((gate) => echoApp(express5, gate.protect())) as [
    ReturnType<typeof echoApp>,
    ReturnType<typeof echoApp>,
  ];
  return { gates, apps, close: () => Promise.all(gates.map((g) => g.close())) };
}

async function alternate(apps: ReturnType<typeof echoApp>[], token: string, count: number) {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await request(apps[i % apps.length]!)
      .get('/rest/api/1.0/projects')
      .auth(token, { type: 'bearer' });
    statuses.push(res.status);
  }
  return statuses;
}

const backends: Array<[string, () => Promise<Fleet>]> = [
  [
    'Redis',
    async () => {
      const { store, peer, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
      return { stores: [store, peer], cleanup };
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const pools = [testPool(), testPool()];
      const schema = freshSchema('rate');
      const stores: [TokenStore, TokenStore] = [
        new PostgresTokenStore({ pool: pools[0]!, schema }),
        new PostgresTokenStore({ pool: pools[1]!, schema }),
      ];
      return {
        stores,
        async cleanup() {
          await dropSchema(pools[0]!, schema);
          await Promise.all(pools.map((p) => p.end()));
        },
      };
    },
  ],
];

describe.each(backends)('rate limits across two instances sharing %s', (_name, open) => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await open();
  });
  afterAll(async () => {
    await fleet?.cleanup();
  });

  it('passes between 100 and 105 of 300 requests alternating between them at 100 a minute', async () => {
    const { gates, apps, close } = twoInstances(fleet.stores, PER_MINUTE_100);
    try {
      const { token } = await gates[0].tokens.create({ user: 'alice', name: 'ci', scope: 'read' });
      const statuses = await alternate(apps, token, 300);
      const passed = statuses.filter((s) => s === 200).length;
      expect(passed).toBeGreaterThanOrEqual(100);
      expect(passed).toBeLessThanOrEqual(105);
      expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
      // Each instance passed its half: neither lost requests to leases the other stranded.
      expect(statuses.filter((s, i) => s === 200 && i % 2 === 0).length).toBe(passed / 2);
    } finally {
      await close();
    }
  });

  it('lets a token’s own limit below the default win, on both instances', async () => {
    const { gates, apps, close } = twoInstances(fleet.stores, PER_MINUTE_100);
    try {
      const { token } = await gates[1].tokens.create({
        user: 'bob',
        name: 'slow',
        scope: 'read',
        rateLimit: { requests: 7, windowSeconds: 60 },
      });
      const statuses = await alternate(apps, token, 20);
      expect(statuses.filter((s) => s === 200)).toHaveLength(7);
      expect(statuses.slice(7).every((s) => s === 429)).toBe(true);
    } finally {
      await close();
    }
  });

  it('counts every token of one user together with perUser', async () => {
    const { gates, apps, close } = twoInstances(fleet.stores, {
      perUser: { requests: 10, windowSeconds: 60 },
    });
    try {
      const first = await gates[0].tokens.create({ user: 'carol', name: 'a', scope: 'read' });
      const second = await gates[0].tokens.create({ user: 'Carol', name: 'b', scope: 'read' });
      const a = await alternate(apps, first.token, 6);
      const b = await alternate(apps, second.token, 6);
      expect([...a, ...b].filter((s) => s === 200)).toHaveLength(10);
      const refused = await request(apps[0]).get('/rest').auth(second.token, { type: 'bearer' });
      expect(refused.status).toBe(429);
      expect(refused.body.errors[0].code).toBe('RATE_LIMITED');
      expect(refused.body.errors[0].message).toMatch(
        /Carol's API tokens have made more than 10 requests in 60 seconds/,
      );
    } finally {
      await close();
    }
  });
});

describe('rate-limit answers', () => {
  const events: AuditEvent[] = [];
  let gate: TokenGate;
  let app: ReturnType<typeof echoApp>;
  beforeAll(() => {
    gate = createTokenGate({
      rateLimit: {
        perToken: { requests: 3, windowSeconds: 30 },
        perUser: { requests: 50, windowSeconds: 60 },
      },
      onEvent: (e) => events.push(e),
      metrics: true,
    });
    app = echoApp(express5, gate.protect());
  });
  afterAll(() => gate.close());

  it('sends RateLimit-Policy and RateLimit (draft 8, as express-rate-limit) on every request that passes', async () => {
    const { token, info } = await gate.tokens.create({ user: 'dave', name: 'x', scope: 'read' });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await request(app).get('/rest').auth(token, { type: 'bearer' });
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-policy']).toMatch(
        /^"token"; q=3; w=30; pk=:[A-Za-z0-9+/=]+:, "user"; q=50; w=60; pk=:[A-Za-z0-9+/=]+:$/,
      );
      const match = /^"token"; r=(\d+); t=(\d+), "user"; r=(\d+); t=(\d+)$/.exec(
        String(res.headers['ratelimit']),
      );
      expect(match).not.toBeNull();
      expect(Number(match![2])).toBeGreaterThan(0);
      expect(Number(match![2])).toBeLessThanOrEqual(30);
      remaining.push(match![1]!);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    // The partition key names the token by a hash of its id, never the token.
    expect(JSON.stringify(events)).not.toContain(token);
    expect(info.id).toHaveLength(11);
  });

  it('refuses with 429, Retry-After, the headers, an event and a metric past the limit', async () => {
    const { token, info } = await gate.tokens.create({ user: 'erin', name: 'x', scope: 'read' });
    for (let i = 0; i < 3; i++) await request(app).get('/rest').auth(token, { type: 'bearer' }).expect(200);
    const res = await request(app).get('/rest/api/1.0/projects?x=1').auth(token, { type: 'bearer' });
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(res.headers['ratelimit']).toMatch(new RegExp(`"token"; r=0; t=${retryAfter}$`));
    expect(res.headers['ratelimit-policy']).toMatch(/^"token"; q=3; w=30/);
    expect(res.body.errors[0]).toMatchObject({ code: 'RATE_LIMITED', context: null, exceptionName: null });
    expect(res.body.errors[0].message).toMatch(/more than 3 requests in 30 seconds/);
    expect(events.at(-1)).toMatchObject({
      type: 'auth.denied',
      code: 'RATE_LIMITED',
      tokenId: info.id,
      user: 'erin',
      path: '/rest/api/1.0/projects',
    });
    expect(await gateMetricsText(gate)).toMatch(
      /express_api_tokens_rate_limited_total\{limit="token"\} [1-9]/,
    );
  });

  it('leaves requests without a token and tokens without a limit alone', async () => {
    const plain = createTokenGate({});
    try {
      const papp = echoApp(express5, plain.protect());
      const { token } = await plain.tokens.create({ user: 'frank', name: 'x', scope: 'read' });
      const res = await request(papp).get('/rest').auth(token, { type: 'bearer' });
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit']).toBeUndefined();
      expect((await request(app).get('/rest')).headers['ratelimit']).toBeUndefined();
    } finally {
      await plain.close();
    }
  });

  it('takes batches of a twentieth of the limit from the store, 1 to 100', () => {
    expect([1, 19, 20, 100, 2_000, 1e9].map(batchFor)).toEqual([1, 1, 1, 5, 100, 100]);
  });
});

/** The gate's metrics text, through its own handler on a real server. */
async function gateMetricsText(gate: TokenGate): Promise<string> {
  const app = express5();
  app.get('/metrics', gate.metricsHandler());
  return (await request(app).get('/metrics')).text;
}

describe('a token’s own rate limit and the administrator’s maximum', () => {
  const store = new MemoryTokenStore();
  const gate = createTokenGate({
    store,
    rateLimit: {
      perToken: { requests: 100, windowSeconds: 60 },
      maxPerToken: { requests: 600, windowSeconds: 60 },
    },
  });
  afterAll(() => gate.close());

  it('stores a limit within the maximum and refuses one above it, naming the field', async () => {
    const { info } = await gate.tokens.create({
      user: 'gina',
      name: 'x',
      scope: 'read',
      rateLimit: { requests: 600, windowSeconds: 120 },
    });
    expect(info.rateLimit).toEqual({ requests: 600, windowSeconds: 120 });
    expect((await store.get(info.id))?.rateLimit).toEqual({ requests: 600, windowSeconds: 120 });
    // More requests in one window, or the same in a shorter one (a higher rate): refused.
    for (const rateLimit of [
      { requests: 601, windowSeconds: 600 },
      { requests: 600, windowSeconds: 30 },
    ])
      await expect(
        gate.tokens.create({ user: 'gina', name: 'y', scope: 'read', rateLimit }),
      ).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
        field: 'rateLimit',
      });
    await expect(
      gate.tokens.update(info.id, { rateLimit: { requests: 0, windowSeconds: 60 } }),
    ).rejects.toMatchObject({ field: 'rateLimit' });
    expect((await gate.tokens.update(info.id, { rateLimit: null }))?.rateLimit).toBeNull();
    // A rotation keeps the limit, like every restriction.
    await gate.tokens.update(info.id, { rateLimit: { requests: 5, windowSeconds: 1 } });
    const rotated = await gate.tokens.rotate(info.id);
    expect(rotated.info.rateLimit).toEqual({ requests: 5, windowSeconds: 1 });
  });

  it('refuses bad options at startup, naming the option', () => {
    expect(() => createTokenGate({ rateLimit: { perToken: { requests: 0, windowSeconds: 60 } } })).toThrow(
      /`rateLimit.perToken` must be \{ requests, windowSeconds \}/,
    );
    expect(() =>
      createTokenGate({ rateLimit: { perTokn: { requests: 1, windowSeconds: 1 } } as RateLimitOptions }),
    ).toThrow(/perToken/);
    expect(() =>
      createTokenGate({
        rateLimit: {
          perToken: { requests: 100, windowSeconds: 1 },
          maxPerToken: { requests: 10, windowSeconds: 1 },
        },
      }),
    ).toThrow(/`rateLimit.perToken` must be within `rateLimit.maxPerToken`/);
  });
});

describe('rate limits when the store fails', () => {
  it('does not refuse requests because of the limiter: each instance counts on its own', async () => {
    const pool = testPool();
    const schema = freshSchema('ratefail');
    const store = new PostgresTokenStore({ pool, schema });
    const gate = createTokenGate({
      store,
      rateLimit: { perToken: { requests: 20, windowSeconds: 60 } },
      metrics: true,
      throttle: false,
    });
    try {
      const app = echoApp(express5, gate.protect());
      const { token } = await gate.tokens.create({ user: 'hank', name: 'x', scope: 'read' });
      await request(app).get('/rest').auth(token, { type: 'bearer' }).expect(200);
      // The counters' table goes away: every increment fails, tokens still verify.
      await pool.query(`ALTER TABLE "${schema}"."bbt_failures" RENAME TO gone`);
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++)
        statuses.push((await request(app).get('/rest').auth(token, { type: 'bearer' })).status);
      // Counted in process instead: the limit still holds on this instance.
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(19);
      expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(21);
      expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
      expect(await gateMetricsText(gate)).toMatch(/express_api_tokens_rate_limit_store_failures_total [1-9]/);
    } finally {
      await gate.close();
      await dropSchema(pool, schema);
      await pool.end();
    }
  });
});

describe('rate limits through the management API', () => {
  const gate = createTokenGate({ rateLimit: { perToken: { requests: 100, windowSeconds: 60 } } });
  const app = express5();
  app.use((req, _res, next) => {
    (req as { user?: unknown }).user = 'ivy';
    next();
  });
  app.use('/tokens/api', gate.router());
  const proxy = echoApp(express5, gate.protect());
  afterAll(() => gate.close());

  it('creates and changes a token’s own limit, refuses one above the maximum, and the proxy enforces it', async () => {
    const created = await request(app)
      .post('/tokens/api/')
      .send({ name: 'ci', scope: 'read', rateLimit: { requests: 2, windowSeconds: 60 } });
    expect(created.status).toBe(201);
    expect(created.body.rateLimit).toEqual({ requests: 2, windowSeconds: 60 });
    const above = await request(app)
      .post('/tokens/api/')
      .send({ name: 'ci', scope: 'read', rateLimit: { requests: 101, windowSeconds: 60 } });
    expect(above.status).toBe(400);
    expect(above.body.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(above.body.errors[0].message).toMatch(/at most 100 requests in 60 seconds/);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await request(proxy).get('/rest').auth(created.body.token, { type: 'bearer' })).status);
    expect(statuses).toEqual([200, 200, 429]);
    const patched = await request(app).patch(`/tokens/api/${created.body.id}`).send({ rateLimit: null });
    expect(patched.status).toBe(200);
    expect(patched.body.rateLimit).toBeNull();
  });
});
