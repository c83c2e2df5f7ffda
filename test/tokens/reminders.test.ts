import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { RedisTokenStore } from '../../lib/stores/redis-token-store.js';
import { makeRecord } from '../../lib/testing/index.js';
import { ExpiryReminders } from '../../lib/tokens/reminders.js';
import { openRedisStore } from '../support/redis-store.js';

const DAY = 86_400_000;
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function until(condition: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await sleep(20);
}

describe('expiry reminders', () => {
  it('emits token.expiring once per lead time across a fleet, and token.expired once', async () => {
    const url = inject('redisUrl');
    const first = await openRedisStore(new Redis(url));
    cleanups.push(first.cleanup);
    const other = new Redis(url);
    cleanups.push(async () => void other.disconnect());
    const second = new RedisTokenStore({ redis: other, keyPrefix: first.keyPrefix });
    const events: AuditEvent[] = [];
    const onEvent = (event: AuditEvent) => events.push(event);
    const gates = [first.store, second].map((store) =>
      createTokenGate({ store, onEvent, reminders: { leadDays: [30, 7, 1], intervalMs: 1_000 } }),
    );
    for (const gate of gates) cleanups.push(() => gate.close());
    const now = Date.now();
    // Tokens made a while ago, as reminders meet them in real life.
    const soon = {
      info: makeRecord({
        user: 'alice',
        name: 'ci',
        createdAt: now - 60 * DAY,
        expiresAt: now + 7 * DAY - 60_000,
      }),
    };
    const late = { info: makeRecord({ user: 'bob', createdAt: now - 60 * DAY, expiresAt: now + 60 * DAY }) };
    await first.store.put(soon.info);
    await first.store.put(late.info);
    const briefly = await gates[1]!.tokens.create({
      user: 'carol',
      name: 'short',
      scope: 'read',
      expiresAt: new Date(now + 1_500),
    });
    const expiring = () => events.filter((e) => e.type === 'token.expiring');
    const expired = () => events.filter((e) => e.type === 'token.expired');
    await until(() => expired().length > 0 && expiring().some((e) => e.tokenId === soon.info.id));
    await sleep(2_500); // more ticks on both instances: nothing is sent twice
    expect(expiring().filter((e) => e.tokenId === soon.info.id)).toEqual([
      expect.objectContaining({ leadDays: 7, user: 'alice', name: 'ci', actor: 'system' }),
    ]);
    expect(expiring().filter((e) => e.tokenId === late.info.id)).toEqual([]);
    // The 1,500 ms token was within every lead when created: it is only reported as it expires.
    expect(expiring().filter((e) => e.tokenId === briefly.info.id)).toEqual([]);
    expect(expired()).toEqual([expect.objectContaining({ tokenId: briefly.info.id, user: 'carol' })]);
    expect(JSON.stringify(events)).not.toMatch(/bbt_/);
  });

  it('sends a reminder due while no instance ran, once, after a restart (looking back a day)', async () => {
    const store = new MemoryTokenStore();
    cleanups.push(() => store.close());
    const events: AuditEvent[] = [];
    const gate = createTokenGate({ store, reminders: false, onEvent: (e) => events.push(e) });
    cleanups.push(() => gate.close());
    const info = makeRecord({ createdAt: Date.now() - 30 * DAY, expiresAt: Date.now() + DAY - 3_600_000 });
    await store.put(info);
    // An instance starting now: its first pass looks back one retention period.
    const reminders = new ExpiryReminders(store, (e) => events.push(e), { leadDays: [1] });
    await reminders.tick();
    await reminders.tick();
    reminders.stop();
    expect(events.filter((e) => e.type === 'token.expiring')).toEqual([
      expect.objectContaining({ tokenId: info.id, leadDays: 1 }),
    ]);
  });

  it('refuses bad reminder options at startup', () => {
    expect(() => createTokenGate({ reminders: { leadDays: [0] } })).toThrow('`reminders.leadDays[0]`');
    expect(() => createTokenGate({ reminders: { intervalMs: 10 } })).toThrow('`reminders.intervalMs`');
  });
});
