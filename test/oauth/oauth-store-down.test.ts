import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { type RedisProcess, startRedisServer } from '../support/redis-server.js';

/** The OAuth endpoints on a real Redis that goes away: they fail closed with 503, never issue. */
describe('gate.oauth when the store fails', () => {
  let server: RedisProcess;
  let redis: Redis;
  let gate: TokenGate;
  let app: express.Express;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.port, '127.0.0.1', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 500,
      connectTimeout: 1_000,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
    });
    redis.on('error', () => {});
    await new Promise((resolve) => redis.once('ready', resolve));
    gate = createTokenGate({ store: new RedisTokenStore({ redis }), storeTimeoutMs: 1_000 });
    app = express();
    app.use('/oauth', gate.oauth());
  });

  afterAll(async () => {
    await gate?.close();
    redis?.disconnect();
    await server?.stop();
  });

  it('answers 503 temporarily_unavailable with Retry-After on every endpoint', async () => {
    const started = await request(app)
      .post('/oauth/device_authorization')
      .type('form')
      .send({ client_id: 'git' });
    expect(started.status).toBe(200);
    await server.stop();
    const calls = [
      request(app).post('/oauth/device_authorization').type('form').send({ client_id: 'git' }),
      request(app).post('/oauth/token').type('form').send({
        grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        device_code: started.body.device_code,
        client_id: 'git',
      }),
      request(app)
        .post('/oauth/token')
        .type('form')
        .send({
          grant_type: 'authorization_code',
          code: 'x'.repeat(43),
          redirect_uri: 'http://127.0.0.1:1',
          client_id: 'git',
        }),
      request(app)
        .post('/oauth/token')
        .type('form')
        .send({
          grant_type: 'refresh_token',
          refresh_token: `bbtr_${'0'.repeat(32)}.${'a'.repeat(43)}`,
          client_id: 'git',
        }),
      request(app)
        .post('/oauth/revoke')
        .type('form')
        .send({ token: `bbtr_${'0'.repeat(32)}.${'a'.repeat(43)}`, client_id: 'git' }),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.status, res.text).toBe(503);
      expect(res.body).toMatchObject({ error: 'temporarily_unavailable' });
      expect(res.headers['retry-after']).toBe('5');
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });
});
