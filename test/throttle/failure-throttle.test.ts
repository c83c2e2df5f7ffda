import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTokenGate, type TokenGate, type TokenGateOptions } from '../../lib/gate/create-token-gate.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { FailureThrottle } from '../../lib/throttle/failure-throttle.js';
import { assembleToken, generateToken } from '../../lib/tokens/format.js';
import { bcryptHasher, sha256Hasher, type TokenHasher } from '../../lib/tokens/hashers.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { countCalls } from '../support/count-calls.js';
import { openRedisStore } from '../support/redis-store.js';

const gates: TokenGate[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const gate of gates) await gate.close();
  for (const cleanup of cleanups) await cleanup();
});

function gateWith(options: TokenGateOptions) {
  const gate = createTokenGate({ trustedProxies: ['loopback'], ...options });
  gates.push(gate);
  return { gate, app: echoApp(EXPRESS_VERSIONS[1]![1], gate.protect()) };
}

const from = (app: ReturnType<typeof gateWith>['app'], ip: string, token: string) =>
  request(app)
    .get('/rest/api/1.0/projects')
    .set('X-Forwarded-For', ip)
    .set('Authorization', `Bearer ${token}`);

/** Same id, another secret, a valid checksum: what anyone who saw the id can send. */
const forge = (token: string) => assembleToken('bbt', token.slice(4, 15), generateToken('bbt').secret);

/** A slow hasher without a quick check, counting its checks (a stand-in for a custom argon2 hasher). */
function slowCountingHasher(delayMs: number): TokenHasher & { checks: number } {
  const inner = sha256Hasher();
  const hasher = {
    name: 'slow-test',
    slow: true,
    checks: 0,
    hash: (material: string) => inner.hash(material),
    async verify(material: string, stored: string) {
      hasher.checks++;
      await sleep(delayMs);
      return inner.verify(material, stored);
    },
  };
  return hasher;
}

describe('throttling never punishes neighbours (NAT)', () => {
  it('keeps letting valid tokens through from an address that is over its failure limit', async () => {
    const { gate, app } = gateWith({ throttle: { maxFailuresPerIp: 5 } });
    const cached = (await gate.tokens.create({ user: 'alice', name: 'a', scope: 'read' })).token;
    const fresh = (await gate.tokens.create({ user: 'bob', name: 'b', scope: 'read' })).token;
    expect((await from(app, '192.0.2.7', cached)).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await from(app, '192.0.2.7', forge(fresh))).status).toBe(401);
    // Over the limit: failures are answered 429 from now on…
    const refused = await from(app, '192.0.2.7', forge(fresh));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // …but a token verified a second earlier, and one never seen before, still pass.
    expect((await from(app, '192.0.2.7', cached)).status).toBe(200);
    expect((await from(app, '192.0.2.7', fresh)).status).toBe(200);
  });

  it('counts an IPv6 /64 as one client, and other clients never notice', async () => {
    const { gate, app } = gateWith({ throttle: { maxFailuresPerIp: 5 } });
    const { token } = await gate.tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    for (let i = 0; i < 5; i++) await from(app, `2001:db8:1:2::${i + 1}`, forge(token));
    expect((await from(app, '2001:db8:1:2:ffff::1', forge(token))).status).toBe(429);
    expect((await from(app, '2001:db8:1:3::1', forge(token))).status).toBe(401);
    expect((await from(app, '2001:db8:1:2:ffff::1', token)).status).toBe(200);
  });
});

describe('nobody can lock a token’s owner out through its public id', () => {
  it('lets the owner in on a cold instance after forged attempts from many addresses and from outside the allowlist', async () => {
    const { store, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    cleanups.push(cleanup);
    const options = { store, ipAllowlist: ['203.0.113.0/24'], throttle: { maxFailuresPerToken: 5 } };
    const attacked = gateWith(options);
    const { token } = await attacked.gate.tokens.create({ user: 'victim', name: 'ci', scope: 'read' });
    await sleep(100); // the revocation feed connects; the cache is then trusted
    for (let i = 0; i < 40; i++) {
      const status = (await from(attacked.app, `203.0.113.${i + 1}`, forge(token))).status;
      expect([401, 429]).toContain(status);
    }
    for (let i = 0; i < 10; i++)
      expect((await from(attacked.app, '198.51.100.1', forge(token))).status).toBe(403);
    // A second instance that never saw the victim's token, and the attacked one itself.
    const cold = gateWith(options);
    await sleep(100);
    expect((await from(cold.app, '203.0.113.200', token)).status).toBe(200);
    expect((await from(attacked.app, '203.0.113.201', token)).status).toBe(200);
  });

  it('runs no bcrypt for forged secrets of a known id, so the owner’s check is never queued behind them', async () => {
    const hasher = countCalls(bcryptHasher({ cost: 6 }));
    const { gate, app } = gateWith({ hasher: hasher.target });
    const { token } = await gate.tokens.create({ user: 'victim', name: 'ci', scope: 'read' });
    hasher.calls.length = 0;
    const forged = Array.from({ length: 200 }, (_, i) =>
      from(app, `198.51.100.${(i % 50) + 1}`, forge(token)),
    );
    const statuses = (await Promise.all(forged)).map((r) => r.status);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    // One forged secret in 65,536 passes the quick check and costs a bcrypt run: of 200, almost
    // always none (at most one here, or this test would fail 1 run in 330).
    const forgedRuns = hasher.count('verify');
    expect(forgedRuns).toBeLessThanOrEqual(1);
    expect((await from(app, '203.0.113.5', token)).status).toBe(200);
    expect(hasher.count('verify')).toBe(forgedRuns + 1);
  });
});

describe('bursts stay within the limits', () => {
  it('runs at most the per-address limit of slow checks for 300 concurrent bad attempts from one address', async () => {
    const hasher = slowCountingHasher(20);
    const { gate, app } = gateWith({ hasher, throttle: { maxFailuresPerIp: 30 } });
    const ids = await Promise.all(
      Array.from({ length: 10 }, (_, i) => gate.tokens.create({ user: `u${i}`, name: 'x', scope: 'read' })),
    );
    hasher.checks = 0;
    const burst = Array.from({ length: 300 }, (_, i) => from(app, '192.0.2.50', forge(ids[i % 10]!.token)));
    const statuses = (await Promise.all(burst)).map((r) => r.status);
    expect(statuses.every((s) => s === 401 || s === 429 || s === 503)).toBe(true);
    expect(hasher.checks).toBeLessThanOrEqual(30);
  });

  it('serves slow checks fairly: a flood from one client does not hold up another client’s first check', async () => {
    const hasher = slowCountingHasher(30);
    const { gate, app } = gateWith({ hasher, throttle: { maxFailuresPerIp: 1_000 } });
    const users = await Promise.all(
      Array.from({ length: 40 }, (_, i) => gate.tokens.create({ user: `f${i}`, name: 'x', scope: 'read' })),
    );
    const good = await gate.tokens.create({ user: 'neighbour', name: 'x', scope: 'read' });
    let floodDone = 0;
    const flood = users.map(({ token }) => from(app, '192.0.2.60', forge(token)).then(() => floodDone++));
    await sleep(20);
    expect((await from(app, '192.0.2.61', good.token)).status).toBe(200);
    const before = floodDone;
    await Promise.all(flood);
    // 40 flood checks run 4 at a time; the neighbour's check gets the next free turn, not the 41st.
    expect(before).toBeLessThanOrEqual(12);
  });

  it('keeps a block when the throttle is flooded with fresh keys', async () => {
    const throttle = new FailureThrottle(new MemoryTokenStore(), { maxFailuresPerIp: 3 });
    const fail = async (ip: string) => {
      const ticket = await throttle.admit(ip, undefined);
      ticket.done(true);
      await sleep(0);
    };
    const isOver = async (ip: string) => {
      const ticket = await throttle.admit(ip, undefined);
      ticket.done(false);
      return ticket.over;
    };
    for (let i = 0; i < 3; i++) await fail('192.0.2.99');
    expect(await isOver('192.0.2.99')).toBe(true);
    // 100,001 other /64s fail once each: more keys than the throttle keeps counts for.
    for (let i = 0; i <= 100_000; i++) {
      const ticket = await throttle.admit(`2001:db8:${(i >> 16) & 0xffff}:${i & 0xffff}::1`, undefined);
      ticket.done(true);
    }
    await sleep(50);
    expect(await isOver('192.0.2.99')).toBe(true);
    expect(await isOver('192.0.2.100')).toBe(false);
  });
});

describe('throttle options', () => {
  it('are checked at startup, naming the option', () => {
    expect(() => createTokenGate({ throttle: { windowMs: 0 } })).toThrow(/`throttle.windowMs`/);
    expect(() => createTokenGate({ throttle: { maxFailuresPerIP: 3 } as never })).toThrow(
      /did you mean `throttle.maxFailuresPerIp`/,
    );
  });
});
