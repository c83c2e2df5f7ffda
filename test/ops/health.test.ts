import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { countCalls } from '../support/count-calls.js';
import { readScrape } from '../support/prometheus-text.js';
import { startRedisServer } from '../support/redis-server.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function healthApp(store?: TokenStore, storeTimeoutMs?: number, healthProbeIntervalMs?: number) {
  const gate = createTokenGate({
    ...(store === undefined ? {} : { store }),
    ...(storeTimeoutMs === undefined ? {} : { storeTimeoutMs }),
    ...(healthProbeIntervalMs === undefined ? {} : { healthProbeIntervalMs }),
  });
  cleanups.push(() => gate.close());
  const app = express();
  const health = gate.healthHandlers();
  app.get('/healthz', health.live);
  app.get('/readyz', health.ready);
  return { gate, app };
}

describe('gate.health()', () => {
  it('is ready and live when the store answers, with the JSON shape on both endpoints', async () => {
    const { gate, app } = healthApp();
    const health = await gate.health();
    expect(health).toEqual({
      ready: true,
      live: true,
      checks: {
        store: { ok: true, kind: 'memory', latencyMs: expect.any(Number), checkedAt: expect.any(String) },
        revocationFeed: { ok: true, connected: true },
      },
    });
    for (const path of ['/healthz', '/readyz']) {
      const res = await request(app).get(path);
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(Object.keys(res.body)).toEqual(['ready', 'live', 'checks']);
    }
  });

  it('shares one store probe between concurrent checks, and probes with a read of an unknown id', async () => {
    const counted = countCalls(new MemoryTokenStore());
    const { gate } = healthApp(counted.target);
    await gate.health(); // the background probe the handlers started, shared
    counted.calls.length = 0;
    await Promise.all([gate.health(), gate.health(), gate.health()]);
    expect(counted.calls).toEqual(['get']);
  });

  it('is not ready while Redis is down (503 within the deadline), stays live, and recovers by itself', async () => {
    const server = await startRedisServer();
    cleanups.push(() => server.stop());
    const redis = new Redis(server.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 500,
    });
    redis.on('error', () => {});
    cleanups.push(async () => redis.disconnect());
    await new Promise((resolve) => redis.once('ready', resolve));
    const { gate, app } = healthApp(new RedisTokenStore({ redis, keyPrefix: 'health' }), 300);
    for (let i = 0; i < 100 && !(await gate.health()).ready; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await request(app).get('/readyz')).status).toBe(200);

    await server.stop(true);
    const started = Date.now();
    const down = await request(app).get('/readyz');
    expect(down.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(down.body).toMatchObject({
      ready: false,
      live: true,
      checks: { store: { ok: false, kind: 'redis', error: expect.stringMatching(/token store/) } },
    });
    const live = await request(app).get('/healthz');
    expect(live.status).toBe(200);
    expect(live.body).toMatchObject({ ready: false, live: true, checks: { store: { ok: false } } });

    const again = await startRedisServer([], server.port, server.dir);
    cleanups.push(() => again.stop());
    let ready = false;
    for (let i = 0; i < 200 && !ready; i++) {
      ready = (await gate.health()).ready;
      if (!ready) await new Promise((r) => setTimeout(r, 50));
    }
    expect(ready).toBe(true);
  });

  it('is not ready while the store reports its revocation feed down, and counts the disconnect', async () => {
    /** A memory store whose feed can be reported down and up, as a networked store's would. */
    class FeedStore extends MemoryTokenStore {
      report: ((connected: boolean) => void) | undefined;
      override async subscribe(onRevoked: (id: string) => void, onFeedState?: (connected: boolean) => void) {
        this.report = onFeedState;
        return super.subscribe(onRevoked);
      }
    }
    const store = new FeedStore();
    const gate = createTokenGate({ store, metrics: true });
    cleanups.push(() => gate.close());
    const app = express();
    app.get('/metrics', gate.metricsHandler());
    const scrape = async () => readScrape((await request(app).get('/metrics')).text);
    for (let i = 0; i < 50 && !(await gate.health()).ready; i++) await new Promise((r) => setTimeout(r, 10));
    expect(store.report).toBeDefined();

    store.report!(false);
    expect(await gate.health()).toMatchObject({
      ready: false,
      live: true,
      checks: { store: { ok: true }, revocationFeed: { ok: false, connected: false } },
    });
    expect((await scrape()).value('express_api_tokens_revocation_feed_up')).toBe(0);
    store.report!(false);
    store.report!(true);
    expect((await gate.health()).ready).toBe(true);
    const s = await scrape();
    expect(s.value('express_api_tokens_revocation_feed_up')).toBe(1);
    expect(s.value('express_api_tokens_revocation_feed_disconnects_total')).toBe(1);
  });

  it('is neither live nor ready once the gate is closed', async () => {
    const { gate, app } = healthApp();
    await gate.close();
    expect(await gate.health()).toMatchObject({ ready: false, live: false });
    expect((await request(app).get('/healthz')).status).toBe(503);
    expect((await request(app).get('/readyz')).status).toBe(503);
  });

  it('refuses handlers mounted without the call', async () => {
    const { gate } = healthApp();
    const app = express();
    app.get('/healthz', gate.healthHandlers as never);
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).send(err.message);
    });
    expect((await request(app).get('/healthz')).text).toMatch(/Mount `gate.healthHandlers\(\)`/);
  });
});

describe('the store kind in health and metrics', () => {
  it("is what the store declares: a subclass keeps its parent's, a custom store names itself", async () => {
    class LoggingStore extends MemoryTokenStore {}
    const custom: TokenStore = Object.assign(new MemoryTokenStore(), { kind: 'dynamo' });
    const odd: TokenStore = Object.assign(new MemoryTokenStore(), { kind: 'Not A Label!' });
    const kinds: string[] = [];
    for (const store of [new LoggingStore(), custom, odd]) {
      const { gate } = healthApp(store);
      kinds.push((await gate.health()).checks.store.kind);
    }
    expect(kinds).toEqual(['memory', 'dynamo', 'custom']);
  });
});

describe('the background probe', () => {
  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('makes /healthz true from the start, without anyone calling /readyz', async () => {
    const { app } = healthApp();
    await tick(0);
    const res = await request(app).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      ready: true,
      checks: { store: { ok: true, checkedAt: expect.any(String) } },
    });
  });

  it('follows the store going down and coming back on /healthz alone, one probe per period, and stops on close()', async () => {
    const server = await startRedisServer();
    cleanups.push(() => server.stop());
    const redis = new Redis(server.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 200,
      retryStrategy: () => 50,
    });
    redis.on('error', () => {});
    cleanups.push(async () => redis.disconnect());
    await new Promise((resolve) => redis.once('ready', resolve));
    const counted = countCalls(new RedisTokenStore({ redis, keyPrefix: `bg${Date.now()}` }));
    const { gate, app } = healthApp(counted.target, 200, 100);
    const healthz = async () => (await request(app).get('/healthz')).body as { ready: boolean };
    const until = async (ready: boolean) => {
      for (let i = 0; i < 100 && (await healthz()).ready !== ready; i++) await tick(20);
      return (await healthz()).ready;
    };
    expect(await until(true)).toBe(true);

    await server.stop(true);
    expect(await until(false)).toBe(false);
    const again = await startRedisServer([], server.port, server.dir);
    cleanups.push(() => again.stop());
    expect(await until(true)).toBe(true);

    // About one store read per period: bounded, never stacked.
    counted.calls.length = 0;
    await tick(500);
    expect(counted.calls.filter((c) => c === 'get').length).toBeGreaterThanOrEqual(3);
    expect(counted.calls.filter((c) => c === 'get').length).toBeLessThanOrEqual(7);
    await gate.close();
    counted.calls.length = 0;
    await tick(300);
    expect(counted.calls).toEqual([]);
  });

  it('is off with healthProbeIntervalMs: 0 (then /healthz shows the last on-demand probe), and the option is checked', async () => {
    const { app } = healthApp(undefined, undefined, 0);
    await tick(20);
    expect((await request(app).get('/healthz')).body).toMatchObject({
      ready: false,
      checks: { store: { checkedAt: null } },
    });
    expect(() => createTokenGate({ healthProbeIntervalMs: -1 })).toThrow(/healthProbeIntervalMs/);
  });
});
