import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { verifierOf } from '../../lib/tokens/service.js';
import { openRedisStore } from '../support/redis-store.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function until(condition: () => boolean, ms = 5_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await sleep(5);
  return condition();
}

describe('the revocation feed', () => {
  it('stops trusting the verified cache the moment the subscription drops, and trusts it again once resubscribed', async () => {
    const name = `feed-test-${process.pid}-${Date.now()}`;
    const { store, redis, cleanup } = await openRedisStore(
      new Redis(inject('redisUrl'), { connectionName: name }),
    );
    cleanups.push(cleanup);
    const gate = createTokenGate({ store, cache: { ttlMs: 60_000 } });
    cleanups.push(() => gate.close());
    const verifier = verifierOf(gate.tokens);
    expect(await until(() => verifier.trusted)).toBe(true);
    const { token } = await gate.tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    await gate.tokens.verify(token);
    expect(verifier.checkCached(token)).toMatchObject({ ok: true });
    // Drop the gate's subscriber connection (a duplicate of the client, so it has its name), as a
    // Redis restart or a network cut would.
    const clients = String(await redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).split('\n');
    const ids = clients
      .filter((line) => line.includes(`name=${name} `))
      .map((line) => /id=(\d+)/.exec(line)![1]!);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) await redis.call('CLIENT', 'KILL', 'ID', id);
    expect(await until(() => !verifier.trusted, 2_000)).toBe(true);
    expect(verifier.checkCached(token)).toBeUndefined();
    expect(await until(() => verifier.trusted)).toBe(true);
  });
});
