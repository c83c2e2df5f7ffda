import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenRecord } from '../model.js';
import {
  type CountLimit,
  EXPIRED_RETENTION_MS,
  type TokenQuery,
  type TokenStore,
  userGroup,
} from '../stores/token-store.js';
import { generateToken } from '../tokens/format.js';

/**
 * What `open()` gives the contract suite.
 * @example
 * runTokenStoreContract('MyTokenStore', async (): Promise<StoreHarness> => {
 *   const store = new MyTokenStore({ table: `test_${Date.now()}` });
 *   const peer = new MyTokenStore({ table: store.table }); // another proxy on the same table
 *   return { store, peer, cleanup: () => store.drop() };
 * });
 */
export interface StoreHarness {
  /** The store under test, on a backend of its own (an empty schema, a fresh key prefix…). */
  store: TokenStore;
  /**
   * A second store on the same backend, as another process or proxy would open it. With it
   * the suite also proves what a fleet relies on: one claim wins across instances, failure
   * counts are shared, and a revocation made by one reaches the other's subscribers.
   */
  peer?: TokenStore;
  /** Removes what `open()` made (drop the schema, delete the keys, close clients). */
  cleanup(): Promise<void>;
}

/**
 * Options of `runTokenStoreContract`.
 * @example
 * // A store whose change feed polls every 2 s.
 * const options: ContractOptions = { revocationWithinMs: 2_500 };
 * runTokenStoreContract(
 *   'PollingStore',
 *   async () => ({ store: new MyTokenStore(), cleanup: async () => {} }),
 *   options,
 * );
 */
export interface ContractOptions {
  /** How soon a revocation made through `peer` must reach `store`'s subscribers. Default 1,000 ms. */
  revocationWithinMs?: number;
}

/** Lifetimes the suite waits out: long enough that a busy machine finishes the calls before them. */
const SHORT_MS = 400;
const PAST_SHORT_MS = 650;

let clock = Date.now();

/**
 * A fresh record with a real token id; each one is created a millisecond after the last.
 * @example
 * await store.put(makeRecord({ user: 'alice', expiresAt: Date.now() + 60_000 }));
 */
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
    origin: null,
    ...overrides,
  };
}

/** Strings that have broken key schemes, SQL and LIKE patterns elsewhere. */
const HOSTILE = [
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
  "o'brien",
  'say "hi"',
  "x'); DROP TABLE tokens; --",
  '1 OR 1=1',
  '%',
  '_',
  'a_c',
  '$1',
  '?',
  ':name',
];

/** Every id of a query's matches, following `nextStart` to the last page. */
async function searchAll(store: TokenStore, query: Omit<TokenQuery, 'start'>): Promise<string[]> {
  const ids: string[] = [];
  let start: number | undefined = 0;
  for (let pages = 0; start !== undefined && pages < 1_000; pages++) {
    const page = await store.search({ ...query, start });
    ids.push(...page.values.map((r) => r.id));
    start = page.isLastPage ? undefined : page.nextStart;
  }
  return ids;
}

/** Waits up to `ms` for `done()`, checking every 20 ms. */
async function within(ms: number, done: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) await sleep(20);
}

/**
 * The behaviour every `TokenStore` must have, as a vitest suite. Call it from a test file with
 * a function that opens your store on a backend of its own; the suite opens it once, runs
 * every case, then calls `cleanup()`. Optional members (`countFailure`, `claim`,
 * `expiringBetween`, `subscribe`) are checked when the store has them.
 * @example
 * // test/my-store.test.ts
 * import { runTokenStoreContract } from 'express-api-tokens/testing';
 * runTokenStoreContract('MyTokenStore', async () => {
 *   const store = new MyTokenStore({ url: process.env.MY_DB_URL });
 *   return { store, cleanup: () => store.close() };
 * });
 */
export function runTokenStoreContract(
  name: string,
  open: () => Promise<StoreHarness>,
  options: ContractOptions = {},
): void {
  const revocationWithinMs = options.revocationWithinMs ?? 1_000;

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

    describe('records', () => {
      it('stores a record and reads it back field for field', async () => {
        const record = makeRecord({
          expiresAt: Date.now() + 3_600_000,
          lastUsedAt: 5,
          lastUsedIp: '2001:db8::1',
        });
        await store.put(record);
        expect(await store.get(record.id)).toEqual(record);
      });

      it('keeps restrictions and the upstream blob exactly, empty lists included', async () => {
        const restricted = makeRecord({
          allowedIps: ['10.0.0.0/8', '2001:db8::/32', '10.0.0.1-10.0.0.50', '203.0.113.7'],
          requiredHeaders: { 'x-ci': `a"b'c\\d ü`, 'x-empty': '', 'x-json': '{"a":[1]}' },
          resources: ['PROJ', 'PROJ/repo', '~user/repo', 'P*/r*'],
          upstream: `v1.${randomBytes(1_500).toString('base64url')}`,
        });
        const empty = makeRecord({ allowedIps: [], requiredHeaders: {}, resources: [] });
        await store.put(restricted);
        await store.put(empty);
        expect(await store.get(restricted.id)).toEqual(restricted);
        expect(await store.get(empty.id)).toEqual(empty);
        expect((await store.listByUser(restricted.user))[0]).toEqual(restricted);
      });

      it('keeps how a token was issued (its origin) exactly', async () => {
        const issued = makeRecord({ origin: { via: 'oauth', client: 'git', ip: '2001:db8::7' } });
        const federated = makeRecord({ origin: { via: 'federation', client: 'ci:github', ip: null } });
        await store.put(issued);
        await store.put(federated);
        expect(await store.get(issued.id)).toEqual(issued);
        expect(await store.get(federated.id)).toEqual(federated);
        expect((await store.listByUser(issued.user)).find((r) => r.id === issued.id)).toEqual(issued);
      });

      it('answers null for an unknown id', async () => {
        expect(await store.get(makeRecord().id)).toBeNull();
      });

      it('answers null, not an error, for ids that look like key patterns or SQL', async () => {
        for (const id of ['*', '{x}', 'a:b', '../t', '', "' OR '1'='1", '%', '_'])
          expect(await store.get(id)).toBeNull();
      });

      it('replaces a record put again under the same id', async () => {
        const record = makeRecord();
        await store.put(record);
        const replaced = { ...record, name: 'replaced', scope: 'write' as const };
        await store.put(replaced);
        expect(await store.get(record.id)).toEqual(replaced);
        expect(await store.listByUser(record.user)).toEqual([replaced]);
      });

      it('hands out copies: changing a returned record changes nothing stored', async () => {
        const record = makeRecord({ allowedIps: ['10.0.0.0/8'] });
        await store.put(record);
        const got = (await store.get(record.id))!;
        got.name = 'edited';
        (got.allowedIps as string[]).push('0.0.0.0/0');
        expect(await store.get(record.id)).toEqual(record);
      });
    });

    describe('listing', () => {
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

      it('keeps all of 100 tokens created in parallel for one user', async () => {
        const user = `busy-${randomBytes(3).toString('hex')}`;
        const records = Array.from({ length: 100 }, () => makeRecord({ user }));
        await Promise.all(records.map((r) => store.put(r)));
        const listed = await store.listByUser(user);
        expect(new Set(listed.map((r) => r.id))).toEqual(new Set(records.map((r) => r.id)));
      });

      it('keeps hostile user names apart from each other and from their look-alikes', async () => {
        const records = HOSTILE.map((user) => makeRecord({ user }));
        for (const record of records) await store.put(record);
        for (const record of records) {
          const listed = await store.listByUser(record.user);
          expect(listed.map((r) => r.id)).toContain(record.id);
          expect(listed.every((r) => r.user.toLowerCase() === record.user.toLowerCase())).toBe(true);
          const found = await searchAll(store, { user: record.user, limit: 50 });
          expect(found).toContain(record.id);
          expect(found).toHaveLength(listed.length);
        }
        expect(await store.listByUser('a')).toEqual([]);
        expect(await store.listByUser('abc')).toEqual([]);
      });
    });

    describe('update', () => {
      it('renames a live token and refuses to change a missing one without creating it', async () => {
        const record = makeRecord();
        await store.put(record);
        expect(await store.update(record.id, { name: 'renamed' })).toBe(true);
        expect(await store.get(record.id)).toEqual({ ...record, name: 'renamed' });
        const missing = makeRecord();
        expect(await store.update(missing.id, { name: 'ghost' })).toBe(false);
        expect(await store.get(missing.id)).toBeNull();
      });

      it('sets and clears restrictions and the upstream blob, leaving every other field alone', async () => {
        const record = makeRecord({ lastUsedAt: 7, lastUsedIp: '192.0.2.1' });
        await store.put(record);
        const restrictions = {
          allowedIps: ['192.0.2.0/24'],
          requiredHeaders: { 'x-ci': 'yes' },
          resources: ['~alice/*'],
          upstream: 'sealed-blob',
        };
        expect(await store.update(record.id, restrictions)).toBe(true);
        expect(await store.get(record.id)).toEqual({ ...record, ...restrictions });
        const cleared = { allowedIps: null, requiredHeaders: null, resources: null, upstream: null };
        expect(await store.update(record.id, cleared)).toBe(true);
        expect(await store.get(record.id)).toEqual(record);
      });

      it('moves the expiry later: the token outlives its old expiry', async () => {
        const record = makeRecord({ expiresAt: Date.now() + SHORT_MS });
        await store.put(record);
        const later = Date.now() + 3_600_000;
        expect(await store.update(record.id, { expiresAt: later })).toBe(true);
        await sleep(PAST_SHORT_MS);
        expect(await store.get(record.id)).toEqual({ ...record, expiresAt: later });
        expect((await store.listByUser(record.user)).map((r) => r.id)).toEqual([record.id]);
        expect(await searchAll(store, { user: record.user, limit: 10 })).toEqual([record.id]);
        if (store.expiringBetween) {
          const soon = await store.expiringBetween(Date.now() - 60_000, Date.now() + 60_000, 1_000);
          expect(soon.map((r) => r.id)).not.toContain(record.id);
          const atNewExpiry = await store.expiringBetween(later - 1, later, 1_000);
          expect(atNewExpiry.map((r) => r.id)).toContain(record.id);
        }
      });

      it('moves the expiry earlier: the token is gone at the new time and reported as expired', async () => {
        const record = makeRecord({ expiresAt: Date.now() + 3_600_000 });
        await store.put(record);
        const sooner = Date.now() + SHORT_MS;
        expect(await store.update(record.id, { expiresAt: sooner })).toBe(true);
        expect((await store.get(record.id))?.expiresAt).toBe(sooner);
        await sleep(PAST_SHORT_MS);
        expect(await store.get(record.id)).toBeNull();
        expect(await store.listByUser(record.user)).toEqual([]);
        expect(await searchAll(store, { user: record.user, limit: 10 })).toEqual([]);
        if (store.expiringBetween) {
          const expired = await store.expiringBetween(sooner - 1, sooner, 1_000);
          expect(expired.map((r) => r.id)).toEqual([record.id]);
        }
      });

      it('removes the expiry: the token never expires', async () => {
        const record = makeRecord({ expiresAt: Date.now() + SHORT_MS });
        await store.put(record);
        expect(await store.update(record.id, { expiresAt: null })).toBe(true);
        await sleep(PAST_SHORT_MS);
        expect(await store.get(record.id)).toEqual({ ...record, expiresAt: null });
        expect((await store.listByUser(record.user)).map((r) => r.id)).toEqual([record.id]);
        if (store.expiringBetween) {
          const window = await store.expiringBetween(record.expiresAt! - 1, record.expiresAt!, 1_000);
          expect(window.map((r) => r.id)).not.toContain(record.id);
        }
      });

      it('never changes or revives an expired token', async () => {
        const record = makeRecord({ expiresAt: Date.now() + SHORT_MS });
        await store.put(record);
        await sleep(PAST_SHORT_MS);
        expect(await store.update(record.id, { name: 'zombie', expiresAt: Date.now() + 3_600_000 })).toBe(
          false,
        );
        expect(await store.get(record.id)).toBeNull();
        expect(await store.listByUser(record.user)).toEqual([]);
      });
    });

    describe('touch and delete', () => {
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
        const record = makeRecord({ expiresAt: Date.now() + 3_600_000 });
        await store.put(record);
        expect(await store.delete(record.id)).toBe(true);
        expect(await store.delete(record.id)).toBe(false);
        expect(await store.get(record.id)).toBeNull();
        expect(await store.listByUser(record.user)).toEqual([]);
        const page = await store.search({ user: record.user, start: 0, limit: 10 });
        expect(page.values).toEqual([]);
        if (store.expiringBetween) {
          const window = await store.expiringBetween(record.expiresAt! - 1, record.expiresAt!, 10);
          expect(window).toEqual([]);
        }
      });
    });

    describe('counting groups (putCounted)', () => {
      /** Puts through `store` and `peer` alternately, all at once; the records stored. */
      const race = async (records: TokenRecord[], limit: CountLimit) => {
        const stores = [store, harness.peer ?? store];
        const results = await Promise.all(
          records.map((record, i) => stores[i % stores.length]!.putCounted!(record, limit)),
        );
        return records.filter((_, i) => results[i]);
      };

      it('stores exactly `max` of 40 tokens put at once (on two instances when there are two)', async () => {
        if (!store.putCounted) return;
        const user = `capped-${randomBytes(4).toString('hex')}`;
        const records = Array.from({ length: 40 }, () => makeRecord({ user }));
        const stored = await race(records, { group: userGroup(user), max: 5 });
        expect(stored).toHaveLength(5);
        expect((await store.listByUser(user)).map((r) => r.id).sort()).toEqual(
          stored.map((r) => r.id).sort(),
        );
        // The refused ones left nothing behind.
        for (const record of records.filter((r) => !stored.includes(r)))
          expect(await store.get(record.id)).toBeNull();
      });

      it('counts tokens written with put in their owner’s group', async () => {
        if (!store.putCounted) return;
        const user = `put-${randomBytes(4).toString('hex')}`;
        await store.put(makeRecord({ user }));
        await store.put(makeRecord({ user: user.toUpperCase() }));
        const limit = { group: userGroup(user), max: 3 };
        expect(await store.putCounted(makeRecord({ user }), limit)).toBe(true);
        expect(await store.putCounted(makeRecord({ user }), limit)).toBe(false);
      });

      it('gives the count back when a token is revoked', async () => {
        if (!store.putCounted) return;
        const user = `revoked-${randomBytes(4).toString('hex')}`;
        const limit = { group: userGroup(user), max: 2 };
        const first = makeRecord({ user });
        expect(await store.putCounted(first, limit)).toBe(true);
        expect(await store.putCounted(makeRecord({ user }), limit)).toBe(true);
        expect(await store.putCounted(makeRecord({ user }), limit)).toBe(false);
        await store.delete(first.id);
        expect(await store.putCounted(makeRecord({ user }), limit)).toBe(true);
        expect(await store.putCounted(makeRecord({ user }), limit)).toBe(false);
      });

      it('gives the count back when a token expires, and not before', async () => {
        if (!store.putCounted) return;
        const user = `expiring-${randomBytes(4).toString('hex')}`;
        const limit = { group: userGroup(user), max: 1 };
        expect(await store.putCounted(makeRecord({ user, expiresAt: Date.now() + SHORT_MS }), limit)).toBe(
          true,
        );
        expect(await store.putCounted(makeRecord({ user }), limit)).toBe(false);
        await sleep(PAST_SHORT_MS);
        expect(await store.putCounted(makeRecord({ user }), limit)).toBe(true);
      });

      it('counts a token until its moved expiry (a rotation’s grace period)', async () => {
        if (!store.putCounted) return;
        const user = `moved-${randomBytes(4).toString('hex')}`;
        const limit = { group: userGroup(user), max: 1 };
        const record = makeRecord({ user, expiresAt: Date.now() + SHORT_MS });
        expect(await store.putCounted(record, limit)).toBe(true);
        await store.update(record.id, { expiresAt: Date.now() + 3_600_000 });
        await sleep(PAST_SHORT_MS);
        expect(await store.putCounted(makeRecord({ user }), limit)).toBe(false);
        await store.update(record.id, { expiresAt: Date.now() + SHORT_MS });
        await sleep(PAST_SHORT_MS);
        expect(await store.putCounted(makeRecord({ user }), limit)).toBe(true);
      });

      it('keeps groups apart: another group does not count against the owner’s', async () => {
        if (!store.putCounted) return;
        const user = `federated-${randomBytes(4).toString('hex')}`;
        const rule = { group: `federation:${user}`, max: 2 };
        const own = { group: userGroup(user), max: 1 };
        const federated = await race(
          Array.from({ length: 6 }, () => makeRecord({ user })),
          rule,
        );
        expect(federated).toHaveLength(2);
        expect(await store.putCounted(makeRecord({ user }), own)).toBe(true);
        expect(await store.putCounted(makeRecord({ user }), own)).toBe(false);
        await store.delete(federated[0]!.id);
        expect(await store.putCounted(makeRecord({ user }), rule)).toBe(true);
        expect(await store.putCounted(makeRecord({ user }), own)).toBe(false);
      });

      it('keeps hostile group names apart', async () => {
        if (!store.putCounted) return;
        const tag = randomBytes(4).toString('hex');
        for (const hostile of HOSTILE) {
          const user = `${hostile}-${tag}`;
          expect(await store.putCounted(makeRecord({ user }), { group: `g:${hostile}${tag}`, max: 1 })).toBe(
            true,
          );
        }
        for (const hostile of HOSTILE) {
          const user = `${hostile}-${tag}`;
          expect(await store.putCounted(makeRecord({ user }), { group: `g:${hostile}${tag}`, max: 1 })).toBe(
            false,
          );
        }
      });
    });

    describe('expiry and retention', () => {
      it('forgets a token once it expires, in every read', async () => {
        const record = makeRecord({
          name: `short-${randomBytes(3).toString('hex')}`,
          expiresAt: Date.now() + SHORT_MS,
        });
        await store.put(record);
        expect(await store.get(record.id)).not.toBeNull();
        await sleep(PAST_SHORT_MS);
        expect(await store.get(record.id)).toBeNull();
        expect(await store.listByUser(record.user)).toEqual([]);
        expect(await searchAll(store, { user: record.user, limit: 10 })).toEqual([]);
        expect(await searchAll(store, { name: record.name, limit: 10 })).toEqual([]);
      });

      it('still reports an expired token to expiringBetween during the retention, never after', async () => {
        if (!store.expiringBetween) return;
        const now = Date.now();
        const recent = makeRecord({ expiresAt: now - 60_000 });
        const old = makeRecord({ expiresAt: now - EXPIRED_RETENTION_MS - 60_000 });
        await store.put(recent);
        await store.put(old);
        expect(await store.get(recent.id)).toBeNull();
        const recentWindow = await store.expiringBetween(now - 120_000, now, 1_000);
        expect(recentWindow.find((r) => r.id === recent.id)).toEqual(recent);
        const oldWindow = await store.expiringBetween(old.expiresAt! - 1, old.expiresAt!, 1_000);
        expect(oldWindow).toEqual([]);
      });

      it('lists records expiring in (after, upTo], soonest first, at most `limit`', async () => {
        if (!store.expiringBetween) return;
        // A window of its own, years ahead, so nothing else stored falls into it.
        const base = Date.now() + 10 * 365 * 86_400_000 + Math.floor(Math.random() * 1e9);
        const at = [3_000, 1_000, 2_000, 4_000].map((offset) => base + offset);
        const records = at.map((expiresAt) => makeRecord({ expiresAt }));
        for (const record of records) await store.put(record);
        await store.put(makeRecord()); // never expires
        const byExpiry = [...records].sort((a, b) => a.expiresAt! - b.expiresAt!);
        expect(await store.expiringBetween(base, base + 3_000, 10)).toEqual(byExpiry.slice(0, 3));
        expect((await store.expiringBetween(base + 1_000, base + 4_000, 10)).map((r) => r.id)).toEqual(
          byExpiry.slice(1).map((r) => r.id),
        );
        expect((await store.expiringBetween(base, base + 10_000, 2)).map((r) => r.id)).toEqual(
          byExpiry.slice(0, 2).map((r) => r.id),
        );
        expect(await store.expiringBetween(base + 4_000, base + 10_000, 10)).toEqual([]);
      });
    });

    describe('the token manager', () => {
      it('filters and pages newest first', async () => {
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

      it('filters across users by expiry and last use', async () => {
        const soon = makeRecord({
          name: `exp-${randomBytes(3).toString('hex')}`,
          expiresAt: Date.now() + 60_000,
        });
        const later = makeRecord({ name: soon.name, expiresAt: Date.now() + 86_400_000 });
        const used = makeRecord({ name: soon.name, lastUsedAt: Date.now() });
        for (const r of [soon, later, used]) await store.put(r);
        expect(
          await searchAll(store, { name: soon.name, expiresBefore: Date.now() + 3_600_000, limit: 10 }),
        ).toEqual([soon.id]);
        expect(
          await searchAll(store, { name: soon.name, lastUsedBefore: Date.now() - 60_000, limit: 10 }),
        ).toEqual([later.id, soon.id]);
      });

      it('selects restricted or unrestricted tokens', async () => {
        const user = `restr-${randomBytes(3).toString('hex')}`;
        const plain = makeRecord({ user });
        const byIp = makeRecord({ user, allowedIps: ['10.0.0.0/8'] });
        const byHeader = makeRecord({ user, requiredHeaders: { 'x-ci': '1' } });
        const byResource = makeRecord({ user, resources: [] });
        const withUpstreamOnly = makeRecord({ user, upstream: 'blob' });
        for (const r of [plain, byIp, byHeader, byResource, withUpstreamOnly]) await store.put(r);
        expect(await searchAll(store, { user, restricted: true, limit: 2 })).toEqual([
          byResource.id,
          byHeader.id,
          byIp.id,
        ]);
        expect(await searchAll(store, { user, restricted: false, limit: 2 })).toEqual([
          withUpstreamOnly.id,
          plain.id,
        ]);
      });

      it('matches name filters literally, LIKE and regex characters included', async () => {
        const user = `like-${randomBytes(3).toString('hex')}`;
        const names = ['100% sure', '100 percent', 'a_b', 'axb', 'back\\slash', 'dot.star*', 'Ünïcode'];
        const records = names.map((name) => makeRecord({ user, name }));
        for (const r of records) await store.put(r);
        const idOf = (name: string) => records[names.indexOf(name)]!.id;
        expect(await searchAll(store, { user, name: '%', limit: 10 })).toEqual([idOf('100% sure')]);
        expect(await searchAll(store, { user, name: '_', limit: 10 })).toEqual([idOf('a_b')]);
        expect(await searchAll(store, { user, name: '\\', limit: 10 })).toEqual([idOf('back\\slash')]);
        expect(await searchAll(store, { user, name: '.star*', limit: 10 })).toEqual([idOf('dot.star*')]);
        expect(await searchAll(store, { user, name: 'üNÏ', limit: 10 })).toEqual([idOf('Ünïcode')]);
      });
    });

    describe('failure counters and claims', () => {
      it('counts failures in a window', async () => {
        if (!store.countFailure || !store.failureCount) return;
        const key = `ip:${randomBytes(4).toString('hex')}`;
        expect(await store.failureCount(key)).toBe(0);
        expect(await store.countFailure(key, SHORT_MS)).toBe(1);
        expect(await store.countFailure(key, SHORT_MS)).toBe(2);
        expect(await store.failureCount(key)).toBe(2);
        await sleep(PAST_SHORT_MS);
        expect(await store.failureCount(key)).toBe(0);
      });

      it('keeps hostile counter keys apart', async () => {
        if (!store.countFailure || !store.failureCount) return;
        const tag = randomBytes(3).toString('hex');
        for (const key of HOSTILE) await store.countFailure(`${tag}${key}`, 60_000);
        for (const key of HOSTILE) expect(await store.failureCount(`${tag}${key}`)).toBe(1);
      });

      it('shares failure counts with every instance on the same backend', async () => {
        const peer = harness.peer;
        if (!peer || !store.countFailure || !peer.countFailure || !peer.failureCount) return;
        const key = `shared:${randomBytes(4).toString('hex')}`;
        const counts = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? store : peer).countFailure!(key, 60_000)),
        );
        expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect(await peer.failureCount(key)).toBe(20);
      });

      it('claims a key once until the claim lapses', async () => {
        if (!store.claim) return;
        const key = `reminder:${randomBytes(4).toString('hex')}:7d`;
        expect(await store.claim(key, SHORT_MS)).toBe(true);
        expect(await store.claim(key, SHORT_MS)).toBe(false);
        expect(await store.claim(`${key}x`, SHORT_MS)).toBe(true);
        await sleep(PAST_SHORT_MS);
        expect(await store.claim(key, 60_000)).toBe(true);
        expect(await store.claim(key, 60_000)).toBe(false);
      });

      it('keeps hostile claim keys apart', async () => {
        if (!store.claim) return;
        const tag = randomBytes(3).toString('hex');
        for (const key of HOSTILE) expect(await store.claim(`${tag}${key}`, 60_000)).toBe(true);
        for (const key of HOSTILE) expect(await store.claim(`${tag}${key}`, 60_000)).toBe(false);
      });

      it('lets exactly one of two instances win a claim made at the same time', async () => {
        const peer = harness.peer;
        if (!peer || !store.claim || !peer.claim) return;
        for (let round = 0; round < 5; round++) {
          const key = `race:${randomBytes(4).toString('hex')}`;
          const results = await Promise.all([
            store.claim(key, 60_000),
            peer.claim(key, 60_000),
            store.claim(key, 60_000),
            peer.claim(key, 60_000),
          ]);
          expect(results.filter(Boolean)).toHaveLength(1);
        }
      });
    });

    describe('keyed values', () => {
      it('keeps a value until it lapses, and replaces it', async () => {
        if (!store.putValue || !store.getValue || !store.takeValue) return;
        const key = `oauth:family:${randomBytes(4).toString('hex')}`;
        expect(await store.getValue(key)).toBeNull();
        await store.putValue(key, '{"a":"ü\\u0000"}', SHORT_MS);
        expect(await store.getValue(key)).toBe('{"a":"ü\\u0000"}');
        await store.putValue(key, 'second', SHORT_MS);
        expect(await store.getValue(key)).toBe('second');
        await sleep(PAST_SHORT_MS);
        expect(await store.getValue(key)).toBeNull();
        expect(await store.takeValue(key)).toBeNull();
      });

      it('hands a value to one take only', async () => {
        if (!store.putValue || !store.takeValue || !store.getValue) return;
        const key = `oauth:code:${randomBytes(4).toString('hex')}`;
        await store.putValue(key, 'code-record', 60_000);
        expect(await store.takeValue(key)).toBe('code-record');
        expect(await store.takeValue(key)).toBeNull();
        expect(await store.getValue(key)).toBeNull();
      });

      it('keeps hostile value keys apart', async () => {
        if (!store.putValue || !store.getValue) return;
        const tag = randomBytes(3).toString('hex');
        for (const [i, key] of HOSTILE.entries()) await store.putValue(`${tag}${key}`, String(i), 60_000);
        for (const [i, key] of HOSTILE.entries())
          expect(await store.getValue(`${tag}${key}`)).toBe(String(i));
      });

      it('lets exactly one of two instances take a value at the same time', async () => {
        const peer = harness.peer;
        if (!peer || !store.putValue || !store.takeValue || !peer.takeValue || !peer.getValue) return;
        for (let round = 0; round < 5; round++) {
          const key = `race:${randomBytes(4).toString('hex')}`;
          await store.putValue(key, 'once', 60_000);
          expect(await peer.getValue(key)).toBe('once');
          const results = await Promise.all([
            store.takeValue(key),
            peer.takeValue(key),
            store.takeValue(key),
            peer.takeValue(key),
          ]);
          expect(results.filter((r) => r !== null)).toEqual(['once']);
        }
      });
    });

    describe('revocation feed', () => {
      it('delivers a revocation to subscribers', async () => {
        if (!store.subscribe) return;
        const seen: string[] = [];
        const stop = await store.subscribe((id) => seen.push(id));
        try {
          const record = makeRecord();
          await store.put(record);
          await store.delete(record.id);
          await within(1_000, () => seen.includes(record.id));
          expect(seen).toContain(record.id);
        } finally {
          await stop();
        }
      });

      it(`delivers a revocation made by another instance within ${revocationWithinMs} ms`, async () => {
        const peer = harness.peer;
        if (!peer || !store.subscribe) return;
        const seen: string[] = [];
        const stop = await store.subscribe((id) => seen.push(id));
        try {
          const record = makeRecord();
          await peer.put(record);
          expect(await store.get(record.id)).toEqual(record);
          const started = Date.now();
          await peer.delete(record.id);
          await within(revocationWithinMs, () => seen.includes(record.id) || seen.includes('*'));
          expect(seen.includes(record.id) || seen.includes('*')).toBe(true);
          expect(Date.now() - started).toBeLessThanOrEqual(revocationWithinMs + 100);
          expect(await store.get(record.id)).toBeNull();
        } finally {
          await stop();
        }
      });

      it(`delivers a change made by another instance within ${revocationWithinMs} ms (caches drop the old version)`, async () => {
        const peer = harness.peer;
        if (!peer || !store.subscribe) return;
        const seen: string[] = [];
        const stop = await store.subscribe((id) => seen.push(id));
        try {
          const record = makeRecord();
          await peer.put(record);
          await sleep(100);
          seen.length = 0;
          expect(await peer.update(record.id, { resources: ['PROJ/repo'] })).toBe(true);
          await within(revocationWithinMs, () => seen.includes(record.id) || seen.includes('*'));
          expect(seen.includes(record.id) || seen.includes('*')).toBe(true);
        } finally {
          await stop();
        }
      });

      it('stops delivering once unsubscribed', async () => {
        if (!store.subscribe) return;
        const seen: string[] = [];
        const stop = await store.subscribe((id) => seen.push(id));
        await stop();
        const record = makeRecord();
        await store.put(record);
        await store.delete(record.id);
        await sleep(300);
        expect(seen.filter((id) => id !== '*')).toEqual([]);
      });
    });
  });
}

/**
 * Asserts that a call fails with the store's stable error (`StoreError`, code
 * `STORE_UNAVAILABLE`, status 503), never "not found".
 * @example
 * await expectStoreError(storeWithDeadBackend.get(makeRecord().id));
 */
export async function expectStoreError(work: Promise<unknown>): Promise<void> {
  await expect(work).rejects.toMatchObject({ name: 'StoreError', code: 'STORE_UNAVAILABLE', status: 503 });
}
