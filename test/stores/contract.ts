import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../lib/errors.js';
import type { TokenRecord, TokenStore } from '../../lib/stores/token-store.js';
import { generateToken } from '../../lib/tokens/format.js';

export interface StoreHarness {
  store: TokenStore;
  cleanup(): Promise<void>;
}

let clock = Date.now();

/** A fresh record with a real token id; each one is created a millisecond after the last. */
export function makeRecord(overrides: Partial<TokenRecord> = {}): TokenRecord {
  clock = Math.max(clock + 1, Date.now());
  return {
    id: generateToken('bbt').id,
    user: `user-${randomBytes(4).toString('hex')}`,
    name: 'laptop',
    scope: 'read',
    hash: `hmac-sha256$${randomBytes(32).toString('base64url')}`,
    createdAt: clock,
    createdBy: 'admin',
    expiresAt: null,
    lastUsedAt: null,
    lastUsedIp: null,
    allowedIps: null,
    requiredHeaders: null,
    resources: null,
    upstream: null,
    ...overrides,
  };
}

const HOSTILE_USERS = [
  'a*',
  'a{b}',
  '{a}',
  'a b',
  'ünïcödé',
  '用户',
  '__proto__',
  'constructor',
  'a\\b',
  '*',
  '../etc',
  'a%2Fb',
];

/**
 * The behaviour every TokenStore must have. Run it against your own store:
 * `runTokenStoreContract('MyStore', async () => ({ store, cleanup }))`.
 */
export function runTokenStoreContract(name: string, open: () => Promise<StoreHarness>): void {
  describe(`TokenStore contract: ${name}`, () => {
    let harness: StoreHarness;
    let store: TokenStore;
    beforeAll(async () => {
      harness = await open();
      store = harness.store;
    });
    afterAll(async () => {
      await harness?.cleanup();
    });

    it('stores a record and reads it back field for field', async () => {
      const record = makeRecord({
        expiresAt: Date.now() + 3_600_000,
        lastUsedAt: 5,
        lastUsedIp: '2001:db8::1',
      });
      await store.put(record);
      expect(await store.get(record.id)).toEqual(record);
    });

    it('answers null for an unknown id', async () => {
      expect(await store.get(makeRecord().id)).toBeNull();
    });

    it('lists a user’s tokens newest first, matching the name case-insensitively', async () => {
      const user = `Mixed-${randomBytes(3).toString('hex')}`;
      const older = makeRecord({ user });
      const newer = makeRecord({ user });
      await store.put(older);
      await store.put(newer);
      await store.put(makeRecord());
      const listed = await store.listByUser(user.toUpperCase());
      expect(listed.map((r) => r.id)).toEqual([newer.id, older.id]);
    });

    it('lists nothing for a user without tokens', async () => {
      expect(await store.listByUser('nobody-here')).toEqual([]);
    });

    it('renames a live token and refuses to rename a missing one without creating it', async () => {
      const record = makeRecord();
      await store.put(record);
      expect(await store.update(record.id, { name: 'renamed' })).toBe(true);
      expect((await store.get(record.id))?.name).toBe('renamed');
      const missing = makeRecord();
      expect(await store.update(missing.id, { name: 'ghost' })).toBe(false);
      expect(await store.get(missing.id)).toBeNull();
    });

    it('records the last use, and a touch never resurrects a revoked token', async () => {
      const record = makeRecord();
      await store.put(record);
      await store.touch(record.id, 1_700_000_000_000, '203.0.113.9');
      expect(await store.get(record.id)).toMatchObject({
        lastUsedAt: 1_700_000_000_000,
        lastUsedIp: '203.0.113.9',
      });
      await store.delete(record.id);
      await store.touch(record.id, Date.now(), '203.0.113.9');
      expect(await store.get(record.id)).toBeNull();
    });

    it('revokes idempotently: true once, then false, and the token is gone everywhere', async () => {
      const record = makeRecord();
      await store.put(record);
      expect(await store.delete(record.id)).toBe(true);
      expect(await store.delete(record.id)).toBe(false);
      expect(await store.get(record.id)).toBeNull();
      expect(await store.listByUser(record.user)).toEqual([]);
      const page = await store.search({ user: record.user, start: 0, limit: 10 });
      expect(page.values).toEqual([]);
    });

    it('forgets a token once it expires', async () => {
      const record = makeRecord({ expiresAt: Date.now() + 150 });
      await store.put(record);
      expect(await store.get(record.id)).not.toBeNull();
      await sleep(300);
      expect(await store.get(record.id)).toBeNull();
      expect(await store.listByUser(record.user)).toEqual([]);
    });

    it('keeps all of 100 tokens created in parallel for one user', async () => {
      const user = `busy-${randomBytes(3).toString('hex')}`;
      const records = Array.from({ length: 100 }, () => makeRecord({ user }));
      await Promise.all(records.map((r) => store.put(r)));
      const listed = await store.listByUser(user);
      expect(new Set(listed.map((r) => r.id))).toEqual(new Set(records.map((r) => r.id)));
    });

    it('keeps hostile user names apart from each other and from their look-alikes', async () => {
      const records = HOSTILE_USERS.map((user) => makeRecord({ user }));
      for (const record of records) await store.put(record);
      for (const record of records) {
        const listed = await store.listByUser(record.user);
        expect(listed.map((r) => r.id)).toContain(record.id);
        expect(listed.every((r) => r.user.toLowerCase() === record.user.toLowerCase())).toBe(true);
      }
      expect(await store.listByUser('a')).toEqual([]);
    });

    it('answers null, not an error, for ids that look like key patterns', async () => {
      for (const id of ['*', '{x}', 'a:b', '../t', '']) expect(await store.get(id)).toBeNull();
    });

    it('filters and pages the token manager’s view newest first', async () => {
      const user = `mgr-${randomBytes(3).toString('hex')}`;
      const made = [];
      for (let i = 0; i < 7; i++) {
        const record = makeRecord({
          user,
          name: i % 2 ? `ci deploy ${i}` : `laptop ${i}`,
          scope: i % 3 ? 'read' : 'write',
        });
        await store.put(record);
        made.push(record);
      }
      const newestFirst = [...made].reverse();
      const deploys = newestFirst.filter((r) => r.name.includes('deploy'));
      const first = await store.search({ user, name: 'DEPLOY', start: 0, limit: 2 });
      expect(first.values.map((r) => r.id)).toEqual(deploys.slice(0, 2).map((r) => r.id));
      expect(first.isLastPage).toBe(false);
      const second = await store.search({ user, name: 'deploy', start: first.nextStart!, limit: 5 });
      expect(second.values.map((r) => r.id)).toEqual(deploys.slice(2).map((r) => r.id));
      expect(second.isLastPage).toBe(true);
      const writes = await store.search({ user, scope: 'write', start: 0, limit: 50 });
      expect(writes.values.map((r) => r.id)).toEqual(
        newestFirst.filter((r) => r.scope === 'write').map((r) => r.id),
      );
      const recent = await store.search({ user, createdAfter: made[4]!.createdAt, start: 0, limit: 50 });
      expect(recent.values.map((r) => r.id)).toEqual([made[6]!.id, made[5]!.id]);
    });

    it('filters the token manager’s view across users by expiry and last use', async () => {
      const soon = makeRecord({
        name: `exp-${randomBytes(3).toString('hex')}`,
        expiresAt: Date.now() + 60_000,
      });
      const later = makeRecord({ name: soon.name, expiresAt: Date.now() + 86_400_000 });
      const used = makeRecord({ name: soon.name, lastUsedAt: Date.now() });
      for (const r of [soon, later, used]) await store.put(r);
      const all = async (query: Parameters<TokenStore['search']>[0]) => {
        const ids: string[] = [];
        let start: number | undefined = 0;
        while (start !== undefined) {
          const page = await store.search({ ...query, start });
          ids.push(...page.values.map((r) => r.id));
          start = page.isLastPage ? undefined : page.nextStart;
        }
        return ids;
      };
      expect(
        await all({ name: soon.name, expiresBefore: Date.now() + 3_600_000, start: 0, limit: 10 }),
      ).toEqual([soon.id]);
      expect(
        await all({ name: soon.name, lastUsedBefore: Date.now() - 60_000, start: 0, limit: 10 }),
      ).toEqual([later.id, soon.id]);
    });

    it('counts failures in a window shared by every caller', async () => {
      if (!store.countFailure || !store.failureCount) return;
      const key = `ip:${randomBytes(4).toString('hex')}`;
      expect(await store.failureCount(key)).toBe(0);
      expect(await store.countFailure(key, 200)).toBe(1);
      expect(await store.countFailure(key, 200)).toBe(2);
      expect(await store.failureCount(key)).toBe(2);
      await sleep(300);
      expect(await store.failureCount(key)).toBe(0);
    });

    it('delivers a revocation to subscribers', async () => {
      if (!store.subscribe) return;
      const seen: string[] = [];
      const stop = await store.subscribe((id) => seen.push(id));
      try {
        const record = makeRecord();
        await store.put(record);
        await store.delete(record.id);
        for (let i = 0; i < 50 && !seen.includes(record.id); i++) await sleep(20);
        expect(seen).toContain(record.id);
      } finally {
        await stop();
      }
    });
  });
}

/** Asserts that a call fails with the store's stable error, never "not found". */
export async function expectStoreError(work: Promise<unknown>): Promise<void> {
  await expect(work).rejects.toBeInstanceOf(StoreError);
  await expect(work).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
}
