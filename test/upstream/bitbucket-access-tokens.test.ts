import { randomBytes } from 'node:crypto';
import express, { type Express } from 'express';
import { Redis } from 'ioredis';
import { compactDecrypt, decodeProtectedHeader } from 'jose';
import request from 'supertest';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { bitbucketLogin } from '../../lib/bitbucket/login.js';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenGate, type TokenGate, type TokenGateOptions } from '../../lib/gate/create-token-gate.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import {
  type BitbucketAccessTokensOptions,
  bitbucketAccessTokens,
} from '../../lib/upstream/bitbucket-access-tokens.js';
import { basic } from '../support/apps.js';
import { type BitbucketStandIn, startBitbucketStandIn } from '../support/bitbucket-stand-in.js';
import { openRedisStore } from '../support/redis-store.js';
import { RetainingStore } from '../support/retaining-store.js';

const DAY = 86_400_000;
const PASSWORDS = { alice: 'alice-pw', bob: 'bob-pw', admin: 'admin-pw', 'John.Doe@corp': 'jd-pw' };
const KEY = { id: 'k1', key: randomBytes(32) };

interface Setup {
  bitbucket: BitbucketStandIn;
  gate: TokenGate;
  app: Express;
  events: AuditEvent[];
  store: TokenStore;
  adminToken?: string;
}

const running: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of running.splice(0).reverse()) await stop();
});

async function setup(
  options: {
    admin?: boolean;
    store?: TokenStore;
    upstream?: Partial<BitbucketAccessTokensOptions>;
    gate?: Partial<TokenGateOptions>;
    bitbucket?: BitbucketStandIn;
  } = {},
): Promise<Setup> {
  const bitbucket =
    options.bitbucket ??
    (await startBitbucketStandIn({
      adminToken: 'groups-token',
      groups: {},
      passwords: PASSWORDS,
      slugs: { 'John.Doe@corp': 'john.doe_corp' },
      accessTokens: { admins: ['admin'] },
    }));
  if (options.bitbucket === undefined) running.push(() => bitbucket.close());
  const adminToken = options.admin
    ? bitbucket.accessTokens.create(
        bitbucket.accessTokens.account('admin')!,
        'token proxy',
        ['PROJECT_ADMIN', 'REPO_ADMIN'],
        null,
      ).token
    : undefined;
  const events: AuditEvent[] = [];
  const store = options.store ?? new MemoryTokenStore();
  const gate = createTokenGate({
    store,
    groups: { admin: ['admins'] },
    permissions: { manageOthers: ['admins'] },
    onEvent: (event) => events.push(event),
    upstream: bitbucketAccessTokens({
      baseUrl: bitbucket.baseUrl,
      encryptionKeys: [KEY],
      timeoutMs: 1_000,
      retry: { initialDelayMs: 20, maxDelayMs: 100 },
      ...(adminToken === undefined ? {} : { adminToken }),
      ...options.upstream,
    }),
    ...options.gate,
  });
  running.push(() => gate.close());
  const app = express();
  app.use('/tokens', bitbucketLogin({ baseUrl: bitbucket.baseUrl }), gate.router());
  return { bitbucket, gate, app, events, store, ...(adminToken === undefined ? {} : { adminToken }) };
}

const as = (user: keyof typeof PASSWORDS) => basic(user, PASSWORDS[user]);

async function until(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('bitbucketAccessTokens options', () => {
  const baseUrl = 'https://bitbucket.example.com';
  it.each([
    [{ baseUrl }, /`encryptionKeys` is required/],
    [{ baseUrl: 'ftp://x', encryptionKeys: [KEY] }, /`baseUrl` must be an http\(s\) URL/],
    [{ baseUrl, encryptionKeys: [KEY], permissions: { read: ['REPO_PEEK'] } }, /`permissions.read\[0\]`/],
    [
      { baseUrl, encryptionKeys: [KEY], permissions: { write: [] } },
      /`permissions.write` must hold at least 1/,
    ],
    [{ baseUrl, encryptionKeys: [KEY], adminTokn: 'x' }, /did you mean `adminToken`/],
    [{ baseUrl, encryptionKeys: [KEY], timeoutMs: 0 }, /`timeoutMs`/],
    [
      { baseUrl, encryptionKeys: [{ id: 'k', key: 'c2hvcnQ=' }] },
      /`encryptionKeys\[0\]\.key` must be 32 random bytes/,
    ],
  ])('throws at startup, naming the option: %#', (options, message) => {
    expect(() => bitbucketAccessTokens(options as never)).toThrow(message);
  });

  it('is the only thing `upstream` takes, and replaces `identity`', () => {
    expect(() => createTokenGate({ upstream: { kind: 'bitbucket-access-tokens' } as never })).toThrow(
      /`upstream` must be made by bitbucketAccessTokens/,
    );
    const upstream = bitbucketAccessTokens({ baseUrl, encryptionKeys: [KEY] });
    expect(() => createTokenGate({ upstream, identity: { header: 'x-user' } })).toThrow(/give one of them/);
  });
});

describe('minting with the owner’s password (management API behind bitbucketLogin)', () => {
  it('creates a Bitbucket token named after ours, with the scope’s permissions and an expiry no earlier than ours', async () => {
    const { app, bitbucket, gate, events } = await setup();
    const res = await request(app)
      .post('/tokens')
      .set('Authorization', as('alice'))
      .send({ name: 'laptop', scope: 'write', expiresInDays: 10 });
    expect(res.status).toBe(201);
    const [minted] = bitbucket.accessTokens.of('alice');
    expect(minted).toMatchObject({
      name: `express-api-tokens ${res.body.id}`,
      permissions: ['REPO_WRITE', 'PROJECT_WRITE'],
      expiryDays: 10,
    });
    expect(minted!.expiryDate!).toBeGreaterThanOrEqual(Date.parse(res.body.expiresAt));
    expect(events.find((e) => e.type === 'token.created')).toMatchObject({ upstream: 'minted' });
    expect(await gate.tokens.verify(res.body.token)).not.toBeNull();
  });

  it('rounds a part day up: Bitbucket counts whole days', async () => {
    const { gate, bitbucket } = await setup();
    await gate.tokens.create({
      user: 'alice',
      name: 'short',
      scope: 'read',
      expiresAt: new Date(Date.now() + 1.5 * DAY),
      upstream: { password: PASSWORDS.alice },
    });
    expect(bitbucket.accessTokens.of('alice')[0]).toMatchObject({
      expiryDays: 2,
      permissions: ['REPO_READ', 'PROJECT_READ'],
    });
  });

  it('mints without expiry for a token without expiry, under the user’s slug', async () => {
    const { app, bitbucket } = await setup();
    const res = await request(app)
      .post('/tokens')
      .set('Authorization', as('John.Doe@corp'))
      .send({ name: 'ci', scope: 'read' });
    expect(res.status).toBe(201);
    expect(bitbucket.accessTokens.of('John.Doe@corp')[0]).toMatchObject({ expiryDays: null });
    expect(bitbucket.calls).toContain('PUT /rest/access-tokens/latest/users/john.doe_corp');
  });

  it('looks the slug up when the library is given a password without one', async () => {
    const { gate, bitbucket } = await setup();
    await gate.tokens.create({
      user: 'John.Doe@corp',
      name: 'x',
      scope: 'read',
      upstream: { password: PASSWORDS['John.Doe@corp'] },
    });
    expect(bitbucket.accessTokens.of('John.Doe@corp')).toHaveLength(1);
  });

  it('refuses a wrong password with 401, storing nothing', async () => {
    const { gate, bitbucket } = await setup();
    await expect(
      gate.tokens.create({ user: 'alice', name: 'x', scope: 'read', upstream: { password: 'wrong' } }),
    ).rejects.toMatchObject({ code: 'PASSWORD_INVALID', status: 401 });
    expect(await gate.tokens.list('alice')).toEqual([]);
    expect(bitbucket.accessTokens.tokens.size).toBe(0);
  });

  it('answers 409 UPSTREAM_TOKEN_REQUIRED for a create without Bitbucket credentials', async () => {
    const { gate } = await setup();
    await expect(gate.tokens.create({ user: 'alice', name: 'x', scope: 'read' })).rejects.toMatchObject({
      code: 'UPSTREAM_TOKEN_REQUIRED',
      status: 409,
    });
  });

  it('keeps the password out of every event, error, response and the store', async () => {
    const { app, events, store, gate } = await setup();
    const created = await request(app)
      .post('/tokens')
      .set('Authorization', as('alice'))
      .send({ name: 'laptop', scope: 'read' });
    const failed = await gate.tokens
      .create({ user: 'bob', name: 'x', scope: 'read', upstream: { password: 'bob-wrong-pw' } })
      .catch((err: Error) => ({ message: err.message, cause: String((err as { cause?: unknown }).cause) }));
    const record = await store.get(created.body.id);
    const everything = JSON.stringify([events, created.body, failed, record]);
    expect(everything).not.toContain(PASSWORDS.alice);
    expect(everything).not.toContain('bob-wrong-pw');
  });
});

describe('linking a Bitbucket token the user created', () => {
  it('accepts the owner’s token carrying the scope’s permissions, and refuses every other', async () => {
    const { app, bitbucket, events } = await setup();
    const registry = bitbucket.accessTokens;
    const alice = registry.account('alice')!;
    const readOnly = registry.create(alice, 'mine', ['REPO_READ', 'PROJECT_READ'], 30).token;
    const link = (bitbucketToken: string, scope = 'read') =>
      request(app)
        .post('/tokens')
        .set('Authorization', as('alice'))
        .send({ name: 'sso', scope, bitbucketToken });

    const linked = await link(readOnly);
    expect(linked.status).toBe(201);
    // A linked token's expiry bounds ours.
    expect(Date.parse(linked.body.expiresAt)).toBeLessThanOrEqual(registry.of('alice')[0]!.expiryDate!);
    expect(events.find((e) => e.type === 'token.created')).toMatchObject({ upstream: 'linked' });

    const tooWeak = await link(readOnly, 'write');
    expect(tooWeak.status).toBe(400);
    expect(tooWeak.body.errors[0].message).toMatch(/lacks REPO_WRITE and PROJECT_WRITE/);

    const bobs = registry.create(registry.account('bob')!, 'his', ['REPO_WRITE'], null).token;
    expect((await link(bobs)).body.errors[0].message).toMatch(/does not belong to alice/);

    const revoked = registry.create(alice, 'gone', ['REPO_READ'], null);
    registry.revoke(revoked.id);
    expect((await link(revoked.token)).body.errors[0].message).toMatch(/does not accept this access token/);

    expect((await link('not-a-bitbucket-token')).status).toBe(400);
    expect(registry.of('alice').map((t) => t.name)).toEqual(['mine']); // nothing minted on the way
  });

  it('reads the linked token’s permissions with the administrator’s token when configured', async () => {
    const { app, bitbucket, adminToken } = await setup({ admin: true });
    const alice = bitbucket.accessTokens.account('alice')!;
    const theirs = bitbucket.accessTokens.create(alice, 'mine', ['REPO_WRITE', 'PROJECT_WRITE'], null).token;
    const res = await request(app)
      .post('/tokens')
      .set('Authorization', as('alice'))
      .send({ name: 'sso', scope: 'write', bitbucketToken: theirs });
    expect(res.status).toBe(201);
    const admin = [...bitbucket.accessTokens.tokens.values()].find((t) => t.token === adminToken)!;
    expect(admin.lastAuthenticated).not.toBeNull();
  });

  it('lets an administrator create for another user only with that user’s Bitbucket token (409 otherwise)', async () => {
    const { app, bitbucket } = await setup();
    const without = await request(app)
      .post('/tokens')
      .set('Authorization', as('admin'))
      .send({ name: 'for alice', scope: 'read', user: 'alice' });
    expect(without.status).toBe(409);
    expect(without.body.errors[0]).toMatchObject({ code: 'UPSTREAM_TOKEN_REQUIRED' });
    expect(without.body.errors[0].message).toMatch(/Bitbucket HTTP access token of theirs/);

    const alices = bitbucket.accessTokens.create(
      bitbucket.accessTokens.account('alice')!,
      'x',
      ['REPO_READ', 'PROJECT_READ'],
      null,
    );
    const withToken = await request(app)
      .post('/tokens')
      .set('Authorization', as('admin'))
      .send({ name: 'for alice', scope: 'read', user: 'alice', bitbucketToken: alices.token });
    expect(withToken.status).toBe(201);
    expect(withToken.body).toMatchObject({ user: 'alice', createdBy: 'admin' });
  });
});

describe('revocation and expiry delete the Bitbucket token', () => {
  it('deletes it on revocation, with the Bitbucket token itself', async () => {
    const { app, bitbucket, events } = await setup();
    const created = await request(app)
      .post('/tokens')
      .set('Authorization', as('alice'))
      .send({ name: 'x', scope: 'read' });
    const bitbucketId = bitbucket.accessTokens.of('alice')[0]!.id;
    const revoked = await request(app).delete(`/tokens/${created.body.id}`).set('Authorization', as('alice'));
    expect(revoked.status).toBe(204);
    expect(bitbucket.accessTokens.tokens.size).toBe(0);
    expect(events.find((e) => e.type === 'upstream.deleted')).toMatchObject({
      tokenId: created.body.id,
      upstreamTokenId: bitbucketId,
      reason: 'revoked',
    });
  });

  it('deletes with the administrator’s token when configured', async () => {
    const { gate, bitbucket, adminToken } = await setup({ admin: true });
    const { info } = await gate.tokens.create({
      user: 'bob',
      name: 'x',
      scope: 'read',
      upstream: { password: PASSWORDS.bob },
    });
    await gate.tokens.revoke(info.id);
    expect(bitbucket.accessTokens.of('bob')).toEqual([]);
    expect(bitbucket.accessTokens.of('admin')[0]!.token).toBe(adminToken);
    expect(bitbucket.accessTokens.of('admin')[0]!.lastAuthenticated).not.toBeNull();
  });

  it('refuses our token at once while Bitbucket is down, and retries until Bitbucket confirms', async () => {
    const { gate, bitbucket, events } = await setup();
    const { token, info } = await gate.tokens.create({
      user: 'alice',
      name: 'x',
      scope: 'read',
      upstream: { password: PASSWORDS.alice },
    });
    bitbucket.mode = 'error';
    expect(await gate.tokens.revoke(info.id)).toBe(true);
    expect(await gate.tokens.verify(token)).toBeNull();
    expect(events.find((e) => e.type === 'upstream.delete-failed')).toMatchObject({
      tokenId: info.id,
      reason: 'revoked',
      error: expect.stringMatching(/Bitbucket failed \(500\)/),
      retryAt: expect.any(String),
    });
    expect(bitbucket.accessTokens.of('alice')).toHaveLength(1);
    bitbucket.mode = 'ok';
    await until(() => bitbucket.accessTokens.of('alice').length === 0);
    await until(() => events.some((e) => e.type === 'upstream.deleted'));
  });

  it('keeps a tombstone while the deletion is pending, so a restarted gate carries it out', async () => {
    const store = new RetainingStore();
    const first = await setup({ store });
    const { info } = await first.gate.tokens.create({
      user: 'alice',
      name: 'x',
      scope: 'read',
      upstream: { password: PASSWORDS.alice },
    });
    first.bitbucket.mode = 'error';
    await first.gate.tokens.revoke(info.id);
    await first.gate.close();
    expect(store.expired.has(info.id)).toBe(true);
    expect(await store.get(info.id)).toBeNull();
    first.bitbucket.mode = 'ok';
    // A new gate on the same store and Bitbucket: its first sweep looks back over the retention.
    const second = await setup({ store, bitbucket: first.bitbucket });
    await until(() => first.bitbucket.accessTokens.of('alice').length === 0);
    await until(() => !store.expired.has(info.id));
    expect(second.events.some((e) => e.type === 'upstream.deleted' && e.reason === 'revoked')).toBe(true);
  });

  it('deletes it when our token expires', async () => {
    const { gate, bitbucket, events } = await setup({ upstream: { sweepIntervalMs: 1_000 } });
    await gate.tokens.create({
      user: 'alice',
      name: 'brief',
      scope: 'read',
      expiresAt: new Date(Date.now() + 1_200),
      upstream: { password: PASSWORDS.alice },
    });
    expect(bitbucket.accessTokens.of('alice')).toHaveLength(1);
    await until(() => bitbucket.accessTokens.of('alice').length === 0, 6_000);
    // Bitbucket deletes before its answer reaches the gate, which then reports it.
    await until(() => events.some((e) => e.type === 'upstream.deleted'));
    expect(events.find((e) => e.type === 'upstream.deleted')).toMatchObject({ reason: 'expired' });
  });

  it('revokes every token of a user at once, then deletes their Bitbucket tokens', async () => {
    const { gate, bitbucket } = await setup();
    for (const name of ['a', 'b', 'c'])
      await gate.tokens.create({
        user: 'alice',
        name,
        scope: 'read',
        upstream: { password: PASSWORDS.alice },
      });
    expect(await gate.tokens.revokeAll({ user: 'alice' })).toBe(3);
    expect(bitbucket.accessTokens.of('alice')).toEqual([]);
  });
});

describe('rotation and copy', () => {
  it('share the Bitbucket token without new credentials; it goes with the last token using it', async () => {
    const { gate, bitbucket, events } = await setup();
    const { info } = await gate.tokens.create({
      user: 'alice',
      name: 'ci',
      scope: 'read',
      expiresAt: new Date(Date.now() + 10 * DAY),
      upstream: { password: PASSWORDS.alice },
    });
    const rotated = await gate.tokens.rotate(info.id, { graceMs: 0 });
    expect(events.filter((e) => e.type === 'token.created').at(-1)).toMatchObject({ upstream: 'shared' });
    expect(bitbucket.accessTokens.of('alice')).toHaveLength(1);
    // The new token never outlives the Bitbucket token it shares.
    expect(Date.parse(rotated.info.expiresAt!)).toBeLessThanOrEqual(
      bitbucket.accessTokens.of('alice')[0]!.expiryDate!,
    );
    const copy = await gate.tokens.copy(rotated.info.id);
    await gate.tokens.revoke(rotated.info.id);
    expect(bitbucket.accessTokens.of('alice')).toHaveLength(1);
    await gate.tokens.revoke(copy.info.id);
    expect(bitbucket.accessTokens.of('alice')).toEqual([]);
  });

  it('mint a fresh Bitbucket token when the owner rotates through the management API', async () => {
    const { app, bitbucket } = await setup();
    const created = await request(app)
      .post('/tokens')
      .set('Authorization', as('alice'))
      .send({ name: 'x', scope: 'read' });
    const rotated = await request(app)
      .post(`/tokens/${created.body.id}/rotate`)
      .set('Authorization', as('alice'))
      .send({ graceMs: 0 });
    expect(rotated.status).toBe(201);
    expect(bitbucket.accessTokens.of('alice').map((t) => t.name)).toEqual([
      `express-api-tokens ${rotated.body.id}`,
    ]);
    const copied = await request(app)
      .post(`/tokens/${rotated.body.id}/copy`)
      .set('Authorization', as('alice'));
    expect(copied.status).toBe(201);
    expect(bitbucket.accessTokens.of('alice')).toHaveLength(2);
  });
});

describe('failures while minting leave nothing half-made', () => {
  it('answers 503 when Bitbucket fails, storing nothing', async () => {
    const { app, bitbucket, gate } = await setup();
    // A first login is remembered for a while: then only the minting meets the failure.
    await request(app).get('/tokens').set('Authorization', as('alice'));
    bitbucket.mode = 'error';
    const res = await request(app)
      .post('/tokens')
      .set('Authorization', as('alice'))
      .send({ name: 'x', scope: 'read' });
    expect(res.status).toBe(503);
    expect(res.body.errors[0]).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(res.body.errors[0].message).toMatch(/Bitbucket could not create the access token/);
    expect(await gate.tokens.list('alice')).toEqual([]);
    expect(bitbucket.accessTokens.tokens.size).toBe(0);
  });

  it('answers 503 when Bitbucket cannot be reached', async () => {
    const bitbucket = await startBitbucketStandIn({ adminToken: 'x', groups: {}, passwords: {} });
    const deadUrl = bitbucket.baseUrl;
    await bitbucket.close();
    const { gate } = await setup({ upstream: { baseUrl: deadUrl } });
    const error = await gate.tokens
      .create({ user: 'alice', name: 'x', scope: 'read', upstream: { password: 'pw', slug: 'alice' } })
      .catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 503 });
    expect((error as Error).message).toMatch(/could not be reached/);
    expect(await gate.tokens.list('alice')).toEqual([]);
  });

  it('finds and deletes a token Bitbucket made when its answer was lost', async () => {
    const { gate, bitbucket } = await setup({ upstream: { timeoutMs: 300 } });
    bitbucket.dropCreateAnswers = true;
    await expect(
      gate.tokens.create({
        user: 'alice',
        name: 'x',
        scope: 'read',
        upstream: { password: PASSWORDS.alice },
      }),
    ).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(bitbucket.accessTokens.of('alice')).toEqual([]);
    expect(await gate.tokens.list('alice')).toEqual([]);
  });

  it('deletes the minted Bitbucket token when our store fails to take the new token', async () => {
    const store = new RetainingStore();
    const { gate, bitbucket } = await setup({ store });
    store.failPuts = true;
    await expect(
      gate.tokens.create({
        user: 'alice',
        name: 'x',
        scope: 'read',
        upstream: { password: PASSWORDS.alice },
      }),
    ).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(bitbucket.accessTokens.of('alice')).toEqual([]);
  });
});

describe('at rest', () => {
  it('leaves no usable credential in a Redis dump: the Bitbucket token is sealed, the key is elsewhere', async () => {
    const redis = await openRedisStore(new Redis(inject('redisUrl')));
    running.push(redis.cleanup);
    const { app, bitbucket } = await setup({ store: redis.store });
    const created = await request(app)
      .post('/tokens')
      .set('Authorization', as('alice'))
      .send({ name: 'x', scope: 'write' });
    expect(created.status).toBe(201);
    const minted = bitbucket.accessTokens.of('alice')[0]!;

    const keys = await redis.redis.keys(`${redis.keyPrefix}:*`);
    const dump: Record<string, unknown> = {};
    for (const key of keys)
      dump[key] =
        (await redis.redis.type(key)) === 'hash'
          ? await redis.redis.hgetall(key)
          : await redis.redis.type(key);
    const text = JSON.stringify(dump);
    for (const secret of [
      minted.token,
      minted.id,
      PASSWORDS.alice,
      created.body.token,
      KEY.key.toString('base64'),
    ])
      expect(text).not.toContain(secret);

    const hash = Object.values(dump).find(
      (v) => typeof v === 'object' && (v as { name?: string }).name === 'x',
    ) as Record<string, string>;
    expect(decodeProtectedHeader(hash['upstream']!)).toEqual({ alg: 'dir', enc: 'A256GCM', kid: 'k1' });
    await expect(compactDecrypt(hash['upstream']!, randomBytes(32))).rejects.toThrow();
    // With the key, and only with it, the credential opens.
    const { plaintext } = await compactDecrypt(hash['upstream']!, KEY.key);
    expect(JSON.parse(new TextDecoder().decode(plaintext))).toMatchObject({
      token: minted.token,
      tokenId: minted.id,
    });
  });
});

describe('in the identity-header mode', () => {
  it('takes no Bitbucket credentials, from the library or the management API', async () => {
    const gate = createTokenGate();
    running.push(() => gate.close());
    expect(gate.tokens.upstreamCredentialsRequired).toBe(false);
    await expect(
      gate.tokens.create({ user: 'alice', name: 'x', scope: 'read', upstream: { password: 'pw' } }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', field: 'upstream' });
    const app = express().use(
      '/tokens',
      (req, _res, next) => {
        (req as { user?: unknown }).user = { name: 'alice' };
        next();
      },
      gate.router(),
    );
    const res = await request(app).post('/tokens').send({ name: 'x', scope: 'read', bitbucketToken: 'abc' });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].message).toMatch(/`bitbucketToken` is not used/);
  });
});
