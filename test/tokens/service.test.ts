import { describe, expect, it } from 'vitest';
import { StoreError, ValidationError } from '../../lib/errors.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { bcryptHasher, sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService, type TokenServiceOptions, verifierOf } from '../../lib/tokens/service.js';
import { countCalls } from '../support/count-calls.js';

const DAY = 86_400_000;

function service(options: Partial<TokenServiceOptions> = {}) {
  const store = options.store ?? new MemoryTokenStore();
  return new TokenService({ store, hasher: sha256Hasher(), tokenPrefix: 'bbt', ...options });
}

describe('TokenService.create', () => {
  it('returns the token once and info without secret or hash', async () => {
    const tokens = service();
    const { token, info } = await tokens.create({ user: 'alice', name: 'laptop', scope: 'read' });
    expect(token).toMatch(/^bbt_/);
    expect(info).toEqual({
      id: token.slice(4, 15),
      user: 'alice',
      name: 'laptop',
      scope: 'read',
      createdAt: expect.any(String),
      createdBy: 'alice',
      expiresAt: null,
      lastUsedAt: null,
      lastUsedIp: null,
      allowedIps: null,
      requiredHeaders: null,
      resources: null,
      rateLimit: null,
      origin: null,
    });
    expect(JSON.stringify(info)).not.toContain(token.slice(15, 58));
  });

  it('records who created a token for someone else', async () => {
    const { info } = await service().create({
      user: 'alice',
      name: 'ci',
      scope: 'write',
      createdBy: 'admin',
    });
    expect(info.createdBy).toBe('admin');
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ name: '   ' }, 'name'],
    [{ name: 'x'.repeat(10_000) }, 'name'],
    [{ name: 'tab\there' }, 'name'],
    [{ name: 'bidi\u202Eevil' }, 'name'],
    [{ scope: 'admin' }, 'scope'],
    [{ user: 'a:b' }, 'user'],
    [{ user: ' alice' }, 'user'],
    [{ user: '' }, 'user'],
    [{ user: 'new\nline' }, 'user'],
    [{ expiresAt: '2001-01-01T00:00:00Z' }, 'expiresAt'],
    [{ expiresAt: 'next tuesday' }, 'expiresAt'],
    [{ createdBy: 'x:y' }, 'createdBy'],
  ])('refuses bad input #%# naming the field', async (override, field) => {
    const input = { user: 'alice', name: 'laptop', scope: 'read', ...override } as never;
    await expect(service().create(input)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', field });
  });

  it('accepts unicode, braces and stars in user names (they are stored safely)', async () => {
    for (const user of ['ünïcödé', 'a{b}', 'star*', 'with space']) {
      const { info } = await service().create({ user, name: 'x', scope: 'read' });
      expect(info.user).toBe(user);
    }
  });

  it('applies defaultDays, then maxDays, when no expiry is asked for', async () => {
    const now = Date.now();
    const withDefault = await service({ expiry: { defaultDays: 7, maxDays: 30 } }).create({
      user: 'a',
      name: 'x',
      scope: 'read',
    });
    expect(Date.parse(withDefault.info.expiresAt!)).toBeCloseTo(now + 7 * DAY, -4);
    const withMax = await service({ expiry: { maxDays: 30 } }).create({
      user: 'a',
      name: 'x',
      scope: 'read',
    });
    expect(Date.parse(withMax.info.expiresAt!)).toBeCloseTo(now + 30 * DAY, -4);
  });

  it('refuses an expiry beyond maxDays instead of clamping it', async () => {
    const tokens = service({ expiry: { maxDays: 30 } });
    const expiresAt = new Date(Date.now() + 31 * DAY);
    await expect(tokens.create({ user: 'a', name: 'x', scope: 'read', expiresAt })).rejects.toBeInstanceOf(
      ValidationError,
    );
    const ok = await tokens.create({
      user: 'a',
      name: 'x',
      scope: 'read',
      expiresAt: new Date(Date.now() + 29 * DAY).toISOString(),
    });
    expect(ok.info.expiresAt).not.toBeNull();
  });

  it('refuses an inconsistent expiry policy at startup', () => {
    expect(() => service({ expiry: { defaultDays: 40, maxDays: 30 } })).toThrow(/defaultDays/);
    expect(() => service({ expiry: { maxDays: 0 } })).toThrow(/maxDays/);
  });
});

describe('TokenService.verify', () => {
  it('verifies a fresh token and refuses unknown, tampered and revoked ones', async () => {
    const tokens = service();
    const { token, info } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    expect(await tokens.verify(token)).toMatchObject({ id: info.id, user: 'alice' });
    const other = await service().create({ user: 'alice', name: 'x', scope: 'read' });
    expect(await tokens.verify(other.token)).toBeNull();
    expect(await tokens.verify(`${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`)).toBeNull();
    await tokens.revoke(info.id);
    expect(await tokens.verify(token)).toBeNull();
  });

  it('refuses garbage and bad checksums without touching the store', async () => {
    const { target: store, calls } = countCalls<TokenStore>(new MemoryTokenStore());
    const tokens = service({ store });
    const { token } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    calls.length = 0;
    for (const bad of [
      '',
      'garbage',
      `${token.slice(0, -2)}${token.endsWith('zz') ? 'yy' : 'zz'}`,
      `bbt_${'A'.repeat(60)}`,
    ]) {
      expect(await verifierOf(tokens).check(bad)).toMatchObject({ ok: false, reason: 'malformed' });
    }
    expect(calls).toEqual([]);
  });

  it('answers null for values that are not token strings', async () => {
    const tokens = service();
    for (const value of [undefined, null, 42, {}, 'bbt_'.padEnd(10_000, 'x')]) {
      expect(await tokens.verify(value as never)).toBeNull();
    }
  });

  it('answers a second verification from the cache, with no store call', async () => {
    const { target: store, calls } = countCalls<TokenStore>(new MemoryTokenStore());
    const tokens = service({ store });
    const { token } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    await tokens.verify(token);
    calls.length = 0;
    await tokens.verify(token);
    expect(calls).toEqual([]);
  });

  it('refuses a token once it expires, even from the cache', async () => {
    let now = Date.now();
    const tokens = service({ now: () => now, cache: { ttlMs: 60_000 } });
    const { token } = await tokens.create({
      user: 'a',
      name: 'x',
      scope: 'read',
      expiresAt: new Date(now + 1_000),
    });
    expect(await tokens.verify(token)).not.toBeNull();
    now += 2_000;
    expect(await verifierOf(tokens).check(token)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses a revoked token at once, whatever the clock says of its cache entry', async () => {
    // A clock behind the wall clock (injected, or stepped back after the entry was cached).
    const tokens = service({ now: () => Date.parse('2025-01-01T00:00:00Z'), cache: { ttlMs: 60_000 } });
    const { token, info } = await tokens.create({ user: 'a', name: 'x', scope: 'read' });
    expect(await tokens.verify(token)).not.toBeNull();
    await tokens.revoke(info.id);
    expect(await tokens.verify(token)).toBeNull();
  });

  it('fails with a StoreError, never null, when the store fails or hangs', async () => {
    const failing = Object.assign(new MemoryTokenStore(), { get: () => Promise.reject(new Error('down')) });
    const hanging = Object.assign(new MemoryTokenStore(), { get: () => new Promise<null>(() => {}) });
    const { token } = await service().create({ user: 'a', name: 'x', scope: 'read' });
    await expect(service({ store: failing }).verify(token)).rejects.toBeInstanceOf(StoreError);
    const started = Date.now();
    await expect(service({ store: hanging, storeTimeoutMs: 100 }).verify(token)).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
    });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('refuses a forged secret for a known id with bcrypt without running bcrypt (quick check)', async () => {
    const store = new MemoryTokenStore();
    const hasher = bcryptHasher({ cost: 4 });
    const { target: counted, count } = countCalls(hasher);
    const verifications = () => count('verify');
    const tokens = new TokenService({ store, hasher: counted, tokenPrefix: 'bbt' });
    const { info } = await tokens.create({ user: 'a', name: 'x', scope: 'read' });
    const record = await store.get(info.id);
    // Same id, wrong secret, valid checksum: forge one through a second service sharing the id.
    const forged = await new TokenService({
      store: new MemoryTokenStore(),
      hasher,
      tokenPrefix: 'bbt',
    }).create({ user: 'a', name: 'x', scope: 'read' });
    await store.put({ ...record!, id: forged.info.id });
    expect(await tokens.verify(forged.token)).toBeNull();
    expect(await tokens.verify(forged.token)).toBeNull();
    expect(verifications()).toBe(0);
  });
});

describe('TokenService last-used tracking', () => {
  it('records the first use at once and later uses at most once per interval', async () => {
    let now = Date.now();
    const { target: store, calls } = countCalls<TokenStore>(new MemoryTokenStore());
    const tokens = service({ store, now: () => now, touchIntervalMs: 60_000 });
    const { token, info } = await tokens.create({ user: 'a', name: 'x', scope: 'read' });
    const use = async (ip: string) => {
      const outcome = await verifierOf(tokens).check(token);
      if (outcome.ok) verifierOf(tokens).noteUse(outcome.record, ip);
      await new Promise((resolve) => setImmediate(resolve));
    };
    await use('203.0.113.1');
    expect(await tokens.get(info.id)).toMatchObject({
      lastUsedIp: '203.0.113.1',
      lastUsedAt: new Date(now).toISOString(),
    });
    calls.length = 0;
    for (let i = 0; i < 10; i++) await use('203.0.113.2');
    expect(calls.filter((c) => c === 'touch')).toEqual([]);
    now += 61_000;
    await use('203.0.113.3');
    expect(calls.filter((c) => c === 'touch')).toHaveLength(1);
    expect(await tokens.get(info.id)).toMatchObject({ lastUsedIp: '203.0.113.3' });
  });
});

describe('TokenService management', () => {
  it('lists, renames and revokes (idempotently)', async () => {
    const tokens = service();
    const a = await tokens.create({ user: 'Alice', name: 'one', scope: 'read' });
    await new Promise((resolve) => setTimeout(resolve, 2));
    const b = await tokens.create({ user: 'alice', name: 'two', scope: 'write' });
    expect((await tokens.list('ALICE')).map((t) => t.id)).toEqual([b.info.id, a.info.id]);
    expect(await tokens.update(a.info.id, { name: 'renamed' })).toMatchObject({ name: 'renamed' });
    expect(await tokens.update('unknownid00', { name: 'x' })).toBeNull();
    expect(await tokens.revoke(a.info.id)).toBe(true);
    expect(await tokens.revoke(a.info.id)).toBe(false);
    expect(await tokens.get(a.info.id)).toBeNull();
    expect(await tokens.get('../../etc')).toBeNull();
  });

  it('drops a renamed token from the cache so the new name is seen', async () => {
    const tokens = service();
    const { token, info } = await tokens.create({ user: 'a', name: 'old', scope: 'read' });
    await tokens.verify(token);
    await tokens.update(info.id, { name: 'new' });
    expect((await tokens.verify(token))?.name).toBe('new');
  });
});

describe('TokenService under concurrency', () => {
  it('shares one lookup and one hash among concurrent checks of the same token', async () => {
    const { target: counting, count } = countCalls<TokenStore>(new MemoryTokenStore());
    const tokens = new TokenService({
      store: counting,
      hasher: bcryptHasher({ cost: 4 }),
      tokenPrefix: 'bbt',
    });
    const { token } = await tokens.create({ user: 'a', name: 'x', scope: 'read' });
    const outcomes = await Promise.all(Array.from({ length: 16 }, () => verifierOf(tokens).check(token)));
    expect(outcomes.every((o: { ok: boolean }) => o.ok)).toBe(true);
    expect(count('get')).toBe(1);
  });
});

describe('TokenService with a slow hasher', () => {
  it('runs bcrypt once per token, re-checking only the stored record when the cache expires', async () => {
    let now = Date.now();
    const hasher = bcryptHasher({ cost: 4 });
    const { target: counted, count } = countCalls(hasher);
    const verifications = () => count('verify');
    const store = new MemoryTokenStore();
    const tokens = new TokenService({
      store,
      hasher: counted,
      tokenPrefix: 'bbt',
      now: () => now,
      cache: { ttlMs: 1_000 },
    });
    const { token, info } = await tokens.create({ user: 'a', name: 'x', scope: 'read' });
    expect(await tokens.verify(token)).not.toBeNull();
    now += 5_000;
    expect(await tokens.verify(token)).not.toBeNull();
    expect(verifications()).toBe(1);
    await tokens.revoke(info.id);
    now += 5_000;
    expect(await tokens.verify(token)).toBeNull();
  });

  it('runs bcrypt once per token with the verified cache switched off too', async () => {
    const { target: counted, count } = countCalls(bcryptHasher({ cost: 4 }));
    const store = new MemoryTokenStore();
    const tokens = new TokenService({ store, hasher: counted, tokenPrefix: 'bbt', cache: { maxEntries: 0 } });
    const { token, info } = await tokens.create({ user: 'a', name: 'x', scope: 'read' });
    for (let i = 0; i < 3; i++) expect(await tokens.verify(token)).not.toBeNull();
    expect(count('verify')).toBe(1);
    // Every check still reads the record: a revocation is seen at once.
    await tokens.revoke(info.id);
    expect(await tokens.verify(token)).toBeNull();
  });
});
