import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import pg from 'pg';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { verifierOf } from '../../lib/tokens/service.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { dropSchema, freshSchema, SHARED_POSTGRES_URL, testPool } from '../support/postgres.js';
import { openRedisStore } from '../support/redis-store.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const randomId = () => Array.from(randomBytes(11), (b) => BASE62[b % 62]).join('');

async function until(condition: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await sleep(5);
}

function gateOn(store: TokenStore): TokenGate {
  const gate = createTokenGate({ store, pepper: 'forged-revocations', throttle: false });
  cleanups.push(() => gate.close());
  return gate;
}

/**
 * Two proxies on one store; a stranger floods the revocation channel with `send` (what anyone
 * who may connect can do) while the second proxy serves 20 tokens. Every request must pass, and
 * a real revocation made on the first proxy must still reach the second within a second.
 */
async function survivesForgery(
  first: TokenStore,
  second: TokenStore,
  send: (messages: string[]) => Promise<void>,
): Promise<void> {
  const revoker = gateOn(first);
  const reader = gateOn(second);
  await until(() => verifierOf(reader.tokens).trusted);
  expect(verifierOf(reader.tokens).trusted).toBe(true);
  const made = await Promise.all(
    Array.from({ length: 20 }, (_, i) => revoker.tokens.create({ user: `u${i}`, name: 'ci', scope: 'read' })),
  );
  const ids = made.map((m) => m.info.id);
  const app = echoApp(EXPRESS_VERSIONS[1]![1], reader.protect());
  const call = (token: string) =>
    request(app).get('/rest/api/1.0/projects').set('Authorization', `Bearer ${token}`);

  let flooding = true;
  let sent = 0;
  const flood = (async () => {
    while (flooding) {
      // '*' ("forget everything"), the ids of the very tokens in use, random ids, and junk.
      const batch = [
        '*',
        ...ids,
        ...Array.from({ length: 20 }, randomId),
        '',
        "'; DROP TABLE x; --",
        '*'.repeat(11),
      ];
      await send(batch);
      sent += batch.length;
    }
  })();
  try {
    const statuses = new Map<number, number>();
    const end = Date.now() + 1_500;
    while (Date.now() < end) {
      const answers = await Promise.all(made.map(({ token }) => call(token)));
      for (const { status } of answers) statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    expect(sent).toBeGreaterThan(1_000);
    expect([...statuses.keys()]).toEqual([200]);

    // A real revocation, made on the other proxy in the middle of the flood, still arrives.
    const victim = made[3]!;
    expect((await call(victim.token)).status).toBe(200);
    await revoker.tokens.revoke(victim.info.id);
    const revokedAt = Date.now();
    let refusedAfter = Number.POSITIVE_INFINITY;
    while (Date.now() - revokedAt < 1_000) {
      if ((await call(victim.token)).status === 401) {
        refusedAfter = Date.now() - revokedAt;
        break;
      }
    }
    expect(refusedAfter).toBeLessThan(1_000);
    expect((await call(made[4]!.token)).status).toBe(200);
  } finally {
    flooding = false;
    await flood;
  }
}

describe('forged revocation messages', () => {
  it('a flood of random ids leaves the verified cache as it was, and costs no memory', async () => {
    const gate = gateOn(new MemoryTokenStore());
    const verifier = verifierOf(gate.tokens);
    const { token } = await gate.tokens.create({ user: 'alice', name: 'ci', scope: 'read' });
    await gate.tokens.verify(token);
    // What the flood leaves behind, garbage collected first: 50,000 remembered ids would hold
    // several megabytes; none remembered holds nothing.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < 50_000; i++) verifier.forget(randomId());
    expect(verifier.checkCached(token)).toMatchObject({ ok: true });
    gc();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(1_000_000);
  });

  it('PostgreSQL: NOTIFY from another connection, with * and with ids, turns nothing into a 503', async () => {
    const schema = freshSchema('forged');
    const pools = [testPool(), testPool()];
    const stranger = new pg.Client({ connectionString: SHARED_POSTGRES_URL });
    await stranger.connect();
    cleanups.push(async () => {
      await stranger.end();
      await dropSchema(pools[0]!, schema);
      for (const pool of pools) await pool.end();
    });
    const first = new PostgresTokenStore({ pool: pools[0]!, schema });
    await first.ensureSchema();
    const second = new PostgresTokenStore({ pool: pools[1]!, schema });
    const channel = `${schema}.bbt_revoked`;
    await survivesForgery(first, second, async (messages) => {
      // One round trip per batch: a stranger's NOTIFYs, as fast as one connection sends them.
      await stranger.query('SELECT pg_notify($1, m) FROM unnest($2::text[]) AS m', [channel, messages]);
    });
  });

  it('Redis: PUBLISH from another client, with * and with ids, turns nothing into a 503', async () => {
    const { store, peer, keyPrefix, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    const stranger = new Redis(inject('redisUrl'));
    cleanups.push(async () => {
      stranger.disconnect();
      await cleanup();
    });
    const channel = `${keyPrefix}:revoked`;
    await survivesForgery(store, peer, async (messages) => {
      const pipeline = stranger.pipeline();
      for (const message of messages) pipeline.publish(channel, message);
      await pipeline.exec();
    });
  });
});
