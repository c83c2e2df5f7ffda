import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService, verifierOf } from '../../lib/tokens/service.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { openRedisStore } from '../support/redis-store.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

const DAY = 86_400_000;

function service(options: Partial<ConstructorParameters<typeof TokenService>[0]> = {}) {
  const events: AuditEvent[] = [];
  const tokens = new TokenService({
    store: new MemoryTokenStore(),
    hasher: sha256Hasher(),
    onEvent: (e) => events.push(e),
    ...options,
  });
  return { tokens, events };
}

describe('TokenInfo objects', () => {
  it('are frozen, so one caller cannot change what later requests see', async () => {
    const { tokens } = service();
    const { token, info } = await tokens.create({ user: 'a', name: 'x', scope: 'read', resources: ['P'] });
    const verified = (await tokens.verify(token))!;
    expect(Object.isFrozen(verified)).toBe(true);
    expect(Object.isFrozen(verified.resources)).toBe(true);
    expect(() => {
      (verified as { scope: string }).scope = 'write';
    }).toThrow(TypeError);
    expect((await tokens.verify(token))!.scope).toBe('read');
    expect(Object.isFrozen(info)).toBe(true);
  });
});

describe('rotation and copies', () => {
  it('rotates: a new token like the old, the old one expiring after the grace period', async () => {
    const { tokens, events } = service({ expiry: { maxDays: 90 } });
    const old = await tokens.create({
      user: 'ci',
      name: 'deploy',
      scope: 'write',
      expiresAt: new Date(Date.now() + 30 * DAY),
      allowedIps: ['10.0.0.0/8'],
    });
    const before = Date.now();
    const rotated = await tokens.rotate(old.info.id, { graceMs: 3_600_000 }, { actor: 'ci' });
    expect(rotated.info).toMatchObject({
      user: 'ci',
      name: 'deploy',
      scope: 'write',
      allowedIps: ['10.0.0.0/8'],
    });
    // A fresh 30-day lifetime, within the policy.
    expect(Date.parse(rotated.info.expiresAt!)).toBeGreaterThanOrEqual(before + 30 * DAY - 1_000);
    const oldNow = (await tokens.get(old.info.id))!;
    expect(Date.parse(oldNow.expiresAt!)).toBeLessThanOrEqual(Date.now() + 3_600_000);
    expect(await tokens.verify(old.token)).not.toBeNull();
    expect(await tokens.verify(rotated.token)).not.toBeNull();
    expect(events.map((e) => e.type)).toEqual(['token.created', 'token.created', 'token.rotated']);
    expect(events[1]).toMatchObject({ rotatedFrom: old.info.id });
    expect(events[2]).toMatchObject({ tokenId: old.info.id, replacedBy: rotated.info.id });
  });

  it('rotates with no grace by revoking the old token at once', async () => {
    const { tokens } = service();
    const old = await tokens.create({ user: 'ci', name: 'deploy', scope: 'read' });
    await tokens.rotate(old.info.id, { graceMs: 0 });
    expect(await tokens.verify(old.token)).toBeNull();
  });

  it('copies a token: same properties, new secret, counted against the cap', async () => {
    const { tokens, events } = service({ maxTokensPerUser: 2 });
    const original = await tokens.create({
      user: 'a',
      name: 'x',
      scope: 'read',
      requiredHeaders: { 'X-A': '1' },
    });
    const copy = await tokens.copy(original.info.id);
    expect(copy.info).toMatchObject({ name: 'x', requiredHeaders: { 'x-a': '1' } });
    expect(copy.token).not.toBe(original.token);
    expect(events.at(-1)).toMatchObject({ type: 'token.created', copiedFrom: original.info.id });
    await expect(tokens.copy(original.info.id)).rejects.toMatchObject({
      code: 'TOKEN_LIMIT_REACHED',
      status: 400,
    });
  });

  it('refuses to rotate or copy an unknown token with 404', async () => {
    const { tokens } = service();
    await expect(tokens.rotate('unknownid00')).rejects.toMatchObject({ code: 'TOKEN_NOT_FOUND' });
    await expect(tokens.copy('unknownid00')).rejects.toMatchObject({ code: 'TOKEN_NOT_FOUND' });
  });
});

describe('the per-user cap', () => {
  it('refuses the token beyond maxTokensPerUser with 400 TOKEN_LIMIT_REACHED, per user, case-insensitively', async () => {
    const { tokens } = service({ maxTokensPerUser: 3 });
    for (let i = 0; i < 3; i++)
      await tokens.create({ user: i % 2 ? 'Alice' : 'alice', name: `t${i}`, scope: 'read' });
    await expect(tokens.create({ user: 'ALICE', name: 'one more', scope: 'read' })).rejects.toMatchObject({
      code: 'TOKEN_LIMIT_REACHED',
      status: 400,
    });
    await tokens.create({ user: 'bob', name: 'fine', scope: 'read' });
  });

  it('defaults to 100 tokens', async () => {
    const { tokens } = service();
    for (let i = 0; i < 100; i++) await tokens.create({ user: 'busy', name: `t${i}`, scope: 'read' });
    await expect(tokens.create({ user: 'busy', name: 'too many', scope: 'read' })).rejects.toMatchObject({
      code: 'TOKEN_LIMIT_REACHED',
    });
  });
});

describe('offboarding', () => {
  it('revokes every token of a user on every instance within a second', async () => {
    const url = inject('redisUrl');
    const first = await openRedisStore(new Redis(url));
    cleanups.push(first.cleanup);
    const { RedisTokenStore } = await import('../../lib/stores/redis-token-store.js');
    const other = new Redis(url);
    cleanups.push(async () => void other.disconnect());
    const admin = createTokenGate({ store: first.store, cache: { ttlMs: 60_000 } });
    const edge = createTokenGate({
      store: new RedisTokenStore({ redis: other, keyPrefix: first.keyPrefix }),
      cache: { ttlMs: 60_000 },
    });
    cleanups.push(
      () => admin.close(),
      () => edge.close(),
    );
    const app = echoApp(EXPRESS_VERSIONS[1]![1], edge.protect());
    const leaver = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        admin.tokens.create({ user: 'Leaver', name: `t${i}`, scope: 'read' }),
      ),
    );
    const stays = await admin.tokens.create({ user: 'stays', name: 's', scope: 'read' });
    for (let i = 0; i < 100 && !verifierOf(edge.tokens).trusted; i++) await sleep(20);
    for (const { token } of leaver)
      expect((await request(app).get('/').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    const started = Date.now();
    expect(await admin.tokens.revokeAll({ user: 'leaver' }, { actor: 'admin' })).toBe(5);
    for (const { token } of leaver) {
      let status = 200;
      while (status === 200 && Date.now() - started < 1_000)
        status = (await request(app).get('/').set('Authorization', `Bearer ${token}`)).status;
      expect(status).toBe(401);
    }
    expect((await request(app).get('/').set('Authorization', `Bearer ${stays.token}`)).status).toBe(200);
  });
});
