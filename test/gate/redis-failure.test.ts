import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { verifierOf } from '../../lib/tokens/service.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { type RedisProcess, startRedisServer } from '../support/redis-server.js';

/** The ioredis options docs/operations.md recommends for failing fast. */
const FAIL_FAST = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 500,
  connectTimeout: 1_000,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
} as const;

// Append-only with fsync on every write, so a killed and restarted server still has its tokens.
const DURABLE = ['--appendonly', 'yes', '--appendfsync', 'always', '--enable-debug-command', 'yes'];

describe('the gate when Redis fails', () => {
  let server: RedisProcess;
  let redis: Redis;
  let gate: TokenGate;
  let token: string;
  let app: ReturnType<typeof echoApp>;

  beforeAll(async () => {
    server = await startRedisServer(DURABLE);
    redis = new Redis(server.port, '127.0.0.1', FAIL_FAST);
    redis.on('error', () => {});
    await new Promise((resolve) => redis.once('ready', resolve));
    gate = createTokenGate({ store: new RedisTokenStore({ redis }), storeTimeoutMs: 1_000, throttle: false });
    app = echoApp(EXPRESS_VERSIONS[1]![1], gate.protect());
    token = (await gate.tokens.create({ user: 'alice', name: 'x', scope: 'read' })).token;
  });

  afterAll(async () => {
    await gate?.close();
    redis?.disconnect();
    await server?.stop();
  });

  const send = () => request(app).get('/rest').set('Authorization', `Bearer ${token}`);

  it('answers 503 within the bound while Redis is down, and recovers by itself when it is back', async () => {
    expect((await send()).status).toBe(200);
    await server.stop(true);
    await sleep(50);
    const statuses: number[] = [];
    // Under load: batches of concurrent requests, each answered within the bound.
    for (let batch = 0; batch < 5; batch++) {
      const started = Date.now();
      const results = await Promise.all(Array.from({ length: 40 }, () => send()));
      statuses.push(...results.map((r) => r.status));
      expect(Date.now() - started).toBeLessThan(1_500);
    }
    expect(new Set(statuses)).toEqual(new Set([503]));

    server = await startRedisServer(DURABLE, server.port, server.dir);
    const restarted = Date.now();
    let status = 503;
    while (status !== 200 && Date.now() - restarted < 5_000) {
      status = (await send()).status;
      if (status !== 200) await sleep(100);
    }
    expect(status).toBe(200);
  });

  it('times a slow Redis out to 503 at the bound, with the event loop staying responsive', async () => {
    const probe = new Redis(server.port, '127.0.0.1');
    const delay = monitorEventLoopDelay({ resolution: 10 });
    try {
      verifierOf(gate.tokens).forget('*');
      void probe.call('DEBUG', 'SLEEP', '2').catch(() => {});
      await sleep(50);
      delay.enable();
      const started = Date.now();
      const res = await send();
      delay.disable();
      expect(res.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(1_200);
      expect(delay.max / 1e6).toBeLessThan(200);
    } finally {
      await sleep(2_100);
      probe.disconnect();
    }
  });
});
