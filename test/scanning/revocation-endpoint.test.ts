import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent, TokenLeakedEvent } from '../../lib/events.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { openRedisStore } from '../support/redis-store.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Two proxies sharing one Redis store; the first serves the revocation endpoint. */
async function twoInstances(
  endpoint: Parameters<ReturnType<typeof createTokenGate>['revocationEndpoint']>[0] = {},
) {
  const { store, peer, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
  cleanups.push(cleanup);
  const events: AuditEvent[] = [];
  const first = createTokenGate({ store, maxTokensPerUser: 10_000, onEvent: (e) => events.push(e) });
  const second = createTokenGate({ store: peer, maxTokensPerUser: 10_000, cache: { ttlMs: 3_600_000 } });
  cleanups.push(
    () => first.close(),
    () => second.close(),
  );
  const app = express();
  app.post('/tokens/leaked', first.revocationEndpoint(endpoint));
  return { first, second, app, events };
}

async function until(condition: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await condition()) && Date.now() < end) await sleep(20);
  return condition();
}

const answerOf = (res: request.Response) => ({
  status: res.status,
  type: res.headers['content-type'],
  cache: res.headers['cache-control'],
  body: res.text,
});

describe('the revocation endpoint for found tokens', () => {
  it('revokes the live ones among 1,000 mixed tokens on every instance sharing the store', async () => {
    const { first, second, app, events } = await twoInstances();
    const live: Array<{ token: string; id: string }> = [];
    const revoked: string[] = [];
    for (let i = 0; i < 300; i++) {
      const created = await second.tokens.create({ user: `user${i % 7}`, name: `live ${i}`, scope: 'read' });
      live.push({ token: created.token, id: created.info.id });
    }
    for (let i = 0; i < 300; i++) {
      const created = await second.tokens.create({ user: 'gone', name: `revoked ${i}`, scope: 'read' });
      await second.tokens.revoke(created.info.id);
      revoked.push(created.token);
    }
    // The second instance trusts its cached verifications for an hour: only the feed can drop them.
    for (const { token } of live) expect(await second.tokens.verify(token)).not.toBeNull();
    const garbage = Array.from({ length: 400 }, (_, i) => {
      const base = live[i % live.length]!.token;
      if (i % 4 === 0) return `${base.slice(0, -1)}${base.at(-1) === 'x' ? 'y' : 'x'}`; // wrong checksum
      if (i % 4 === 1) return `ghp_${'a'.repeat(36)}`;
      if (i % 4 === 2) return `bbt_${i}`;
      return '';
    });
    const all = [...live.map((l) => l.token), ...revoked, ...garbage].sort(() => Math.random() - 0.5);
    expect(all).toHaveLength(1_000);

    const res = await request(app).post('/tokens/leaked').send({ credentials: all });
    expect(res.status).toBe(202);
    expect(
      await until(async () => {
        for (const { token } of live) if ((await second.tokens.verify(token)) !== null) return false;
        return true;
      }),
    ).toBe(true);
    for (const { token } of live) expect(await first.tokens.verify(token)).toBeNull();
    const leaked = events.filter((e): e is TokenLeakedEvent => e.type === 'token.leaked');
    expect(leaked.map((e) => e.tokenId).sort()).toEqual(live.map((l) => l.id).sort());
    expect(leaked.every((e) => e.source === 'report' && e.revoked)).toBe(true);
    expect(JSON.stringify(events)).not.toContain(live[0]!.token);
  }, 120_000);

  it("takes GitHub's secret-scanning partner payload and reports where the token was found", async () => {
    const { second, app, events } = await twoInstances();
    const created = await second.tokens.create({ user: 'alice', name: 'ci', scope: 'write' });
    const res = await request(app)
      .post('/tokens/leaked')
      .send([
        {
          token: created.token,
          type: 'express_api_token',
          url: 'https://github.com/octo/repo/blob/abc/deploy.env',
          source: 'content',
        },
        { token: 'bbt_nothing', type: 'express_api_token', url: 'https://example.com', source: 'gist' },
      ]);
    expect(res.status).toBe(202);
    expect(await until(async () => (await second.tokens.verify(created.token)) === null)).toBe(true);
    expect(events.filter((e) => e.type === 'token.leaked')).toEqual([
      expect.objectContaining({
        tokenId: created.info.id,
        user: 'alice',
        name: 'ci',
        source: 'report',
        url: 'https://github.com/octo/repo/blob/abc/deploy.env',
        finder: 'content',
        revoked: true,
        actor: 'leak-report',
      }),
    ]);
  });

  it('answers every input alike, in content and in timing', async () => {
    const { second, app } = await twoInstances({ maxRequestsPerIp: 1_000 });
    const liveTokens: string[] = [];
    for (let i = 0; i < 40; i++)
      liveTokens.push((await second.tokens.create({ user: 'bob', name: `t${i}`, scope: 'read' })).token);
    const revokedToken = (await second.tokens.create({ user: 'bob', name: 'r', scope: 'read' })).token;
    await second.tokens.revoke(revokedToken.slice(4, 15));
    const wrong = `${liveTokens[0]!.slice(0, -1)}${liveTokens[0]!.at(-1) === 'x' ? 'y' : 'x'}`;
    const answers = [];
    for (const token of [liveTokens[39]!, revokedToken, wrong, 'bbt_garbage', 'hello'])
      answers.push(
        answerOf(
          await request(app)
            .post('/tokens/leaked')
            .send({ credentials: [token] }),
        ),
      );
    for (const answer of answers) expect(answer).toEqual(answers[0]);
    expect(answers[0]!.status).toBe(202);

    const agent = request(app);
    const time = async (token: string) => {
      const started = process.hrtime.bigint();
      await agent.post('/tokens/leaked').send({ credentials: [token] });
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    const liveTimes: number[] = [];
    const garbageTimes: number[] = [];
    for (let i = 0; i < 38; i++) {
      liveTimes.push(await time(liveTokens[i]!));
      await sleep(30); // the revocation behind the answer, done before the next request
      garbageTimes.push(await time(`bbt_garbage${i}`));
      await sleep(30);
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1]!;
    // The answer goes out before any lookup: a live token is not slower to report than garbage.
    expect(Math.abs(median(liveTimes) - median(garbageTimes))).toBeLessThan(
      Math.max(5, median(garbageTimes)),
    );
  }, 60_000);

  it('bounds requests: 1,000 tokens, the body size, and the rate per address', async () => {
    const { app } = await twoInstances({ maxRequestsPerIp: 4, maxBodyBytes: 4_096 });
    const tooLarge = await request(app)
      .post('/tokens/leaked')
      .send({ credentials: Array.from({ length: 100 }, () => `bbt_${'x'.repeat(60)}`) });
    expect(tooLarge.status).toBe(413);
    const { app: roomy } = await twoInstances({ maxRequestsPerIp: 4 });
    const overCount = await request(roomy)
      .post('/tokens/leaked')
      .send({ credentials: Array.from({ length: 1_001 }, () => 'x') });
    expect(overCount.status).toBe(400);
    expect(overCount.body.errors[0].code).toBe('VALIDATION_FAILED');
    expect((await request(roomy).post('/tokens/leaked').send('not json').type('text/plain')).status).toBe(
      400,
    );
    expect((await request(roomy).post('/tokens/leaked').send({ tokens: [] })).status).toBe(400);
    expect((await request(roomy).post('/tokens/leaked').send({ credentials: [] })).status).toBe(202);
    // A fifth request from the address within the minute.
    const limited = await request(roomy).post('/tokens/leaked').send({ credentials: [] });
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('60');
    expect((await request(app).get('/tokens/leaked')).status).toBe(404);
  });
});
