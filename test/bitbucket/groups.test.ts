import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bitbucketGroups } from '../../lib/bitbucket/groups.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { EXPRESS_VERSIONS } from '../support/apps.js';
import { type BitbucketStandIn, startBitbucketStandIn } from '../support/bitbucket-stand-in.js';

let bitbucket: BitbucketStandIn;
beforeAll(async () => {
  bitbucket = await startBitbucketStandIn({
    adminToken: 'admin-http-token',
    groups: { alice: ['stash-users', 'developers', 'api-users', 'release'], bob: ['stash-users'] },
    passwords: {
      alice: 'correct horse',
      bob: 'battery staple',
      'John.Doe@corp': 'directory',
      locked: 'whatever',
    },
    slugs: { 'John.Doe@corp': 'john.doe_corp' },
    captcha: ['locked'],
  });
});
afterAll(async () => {
  await bitbucket.close();
});
beforeEach(() => {
  bitbucket.mode = 'ok';
  bitbucket.calls.length = 0;
});

describe('bitbucketGroups', () => {
  it('follows Bitbucket’s paging to collect every group', async () => {
    const resolve = bitbucketGroups({ baseUrl: bitbucket.baseUrl, token: 'admin-http-token' });
    expect(await resolve('alice')).toEqual(['stash-users', 'developers', 'api-users', 'release']);
    expect(bitbucket.calls).toHaveLength(2);
    expect(bitbucket.calls[0]).toContain('context=alice');
    expect(bitbucket.calls[1]).toContain('start=2');
  });

  it('caches memberships for cacheTtlMs', async () => {
    const resolve = bitbucketGroups({
      baseUrl: bitbucket.baseUrl,
      token: 'admin-http-token',
      cacheTtlMs: 100,
    });
    await resolve('bob');
    await resolve('BOB');
    expect(bitbucket.calls).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 150));
    await resolve('bob');
    expect(bitbucket.calls).toHaveLength(2);
  });

  it('answers no groups for a user Bitbucket does not know', async () => {
    expect(await bitbucketGroups({ baseUrl: bitbucket.baseUrl, token: 'admin-http-token' })('ghost')).toEqual(
      [],
    );
  });

  it('fails closed when Bitbucket errors, refuses the admin token, hangs or is unreachable', async () => {
    bitbucket.mode = 'error';
    await expect(
      bitbucketGroups({ baseUrl: bitbucket.baseUrl, token: 'admin-http-token' })('alice'),
    ).rejects.toMatchObject({ status: 503 });
    bitbucket.mode = 'ok';
    await expect(
      bitbucketGroups({ baseUrl: bitbucket.baseUrl, token: 'wrong' })('alice'),
    ).rejects.toMatchObject({ status: 503 });
    bitbucket.mode = 'hang';
    const started = Date.now();
    await expect(
      bitbucketGroups({ baseUrl: bitbucket.baseUrl, token: 'admin-http-token', timeoutMs: 200 })('alice'),
    ).rejects.toMatchObject({
      code: 'UPSTREAM_UNAVAILABLE',
    });
    expect(Date.now() - started).toBeLessThan(1_000);
    await expect(
      bitbucketGroups({ baseUrl: 'http://127.0.0.1:1', token: 't' })('alice'),
    ).rejects.toMatchObject({ status: 503 });
  });

  it('makes a gate answer 503, never "no groups", when Bitbucket is down', async () => {
    const gate = createTokenGate({
      groups: bitbucketGroups({ baseUrl: bitbucket.baseUrl, token: 'admin-http-token' }),
      permissions: { useTokens: ['api-users'] },
    });
    const app = EXPRESS_VERSIONS[1]![1]();
    app.use(gate.protect(), (_req, res) => {
      res.end('ok');
    });
    const alice = (await gate.tokens.create({ user: 'alice', name: 'x', scope: 'read' })).token;
    const bob = (await gate.tokens.create({ user: 'bob', name: 'x', scope: 'read' })).token;
    expect((await request(app).get('/').set('Authorization', `Bearer ${alice}`)).status).toBe(200);
    expect((await request(app).get('/').set('Authorization', `Bearer ${bob}`)).status).toBe(403);
    bitbucket.mode = 'error';
    const carol = (await gate.tokens.create({ user: 'carol', name: 'x', scope: 'read' })).token;
    expect((await request(app).get('/').set('Authorization', `Bearer ${carol}`)).status).toBe(503);
    await gate.close();
  });

  it('throws at startup on a bad URL or token', () => {
    expect(() => bitbucketGroups({ baseUrl: 'not a url', token: 't' })).toThrow(/`baseUrl`/);
    expect(() => bitbucketGroups({ baseUrl: 'ftp://x', token: 't' })).toThrow(/`baseUrl`/);
    expect(() => bitbucketGroups({ baseUrl: 'https://x', token: '' })).toThrow(/`token`/);
  });
});
