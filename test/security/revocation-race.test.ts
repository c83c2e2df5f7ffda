import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import type { TokenRecord } from '../../lib/model.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { verifierOf } from '../../lib/tokens/service.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { openRedisStore } from '../support/redis-store.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/**
 * A store whose lookups, while `slow` is on, read at once but answer 300 ms later, like a
 * loaded database: a verification is then surely still in flight when a revocation completes.
 */
function slowReads<T extends TokenStore>(store: T): T & { slow: boolean } {
  const get = store.get.bind(store);
  const slowed = Object.assign(store, {
    slow: true,
    get: async (id: string): Promise<TokenRecord | null> => {
      const record = await get(id);
      if (slowed.slow) await sleep(300);
      return record;
    },
  });
  return slowed;
}

function gateOn(store: TokenStore): { gate: TokenGate; app: ReturnType<typeof echoApp> } {
  const gate = createTokenGate({ store, cache: { ttlMs: 60_000 } });
  cleanups.push(() => gate.close());
  return { gate, app: echoApp(EXPRESS_VERSIONS[1]![1], gate.protect()) };
}

const call = (app: ReturnType<typeof echoApp>, token: string) =>
  request(app).get('/rest').set('Authorization', `Bearer ${token}`);

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(10);
}

describe('revocation wins over lookups that started before it', () => {
  it('on the memory store: a verification in flight when revoke() returns is refused, and nothing is cached', async () => {
    const store = slowReads(new MemoryTokenStore());
    const { gate, app } = gateOn(store);
    const { token, info } = await gate.tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    const inFlight = call(app, token);
    const answer = inFlight.then((r) => r.status);
    await sleep(30); // the lookup has read the record and is waiting
    store.slow = false;
    await gate.tokens.revoke(info.id);
    expect(await answer).toBe(401);
    for (let i = 0; i < 5; i++) expect((await call(app, token)).status).toBe(401);
  });

  it('on Redis: a revocation arriving by pub/sub beats a lookup in flight on another instance', async () => {
    const url = inject('redisUrl');
    const first = await openRedisStore(new Redis(url));
    cleanups.push(first.cleanup);
    const otherClient = new Redis(url);
    cleanups.push(async () => void otherClient.disconnect());
    const revoker = gateOn(first.store);
    const reader = gateOn(slowReads(new RedisTokenStore({ redis: otherClient, keyPrefix: first.keyPrefix })));
    await until(() => verifierOf(reader.gate.tokens).trusted);
    const { token, info } = await revoker.gate.tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    const answer = call(reader.app, token).then((r) => r.status);
    await sleep(30);
    await revoker.gate.tokens.revoke(info.id);
    expect(await answer).toBe(401);
    expect((await call(reader.app, token)).status).toBe(401);
  });

  it('after a feed interruption (`*`), a lookup in flight reads again before it answers', async () => {
    const store = slowReads(new MemoryTokenStore());
    const { gate, app } = gateOn(store);
    const { token, info } = await gate.tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    const answer = call(app, token).then((r) => r.status);
    await sleep(30);
    store.slow = false;
    // Revoked behind the gate's back (another instance whose message was lost), then '*'.
    await store.delete(info.id);
    verifierOf(gate.tokens).forget('*');
    expect(await answer).toBe(401);
  });

  it('still answers 200 for a token that was not revoked while others were', async () => {
    const { gate, app } = gateOn(slowReads(new MemoryTokenStore()));
    const kept = await gate.tokens.create({ user: 'alice', name: 'kept', scope: 'read' });
    const gone = await gate.tokens.create({ user: 'alice', name: 'gone', scope: 'read' });
    const answer = call(app, kept.token).then((r) => r.status);
    await sleep(30);
    await gate.tokens.revoke(gone.info.id);
    expect(await answer).toBe(200);
  });
});
