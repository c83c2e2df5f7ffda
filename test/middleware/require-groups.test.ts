import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { staticGroups } from '../../lib/groups/group-resolver.js';
import { authenticateToken } from '../../lib/middleware/authenticate-token.js';
import { extractCredentials } from '../../lib/middleware/extract-credentials.js';
import { requireGroups } from '../../lib/middleware/require-groups.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { basic, EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

describe.each(EXPRESS_VERSIONS)('requireGroups on %s', (_name, makeApp) => {
  const tokens = new TokenService({
    store: new MemoryTokenStore(),
    hasher: sha256Hasher(),
    tokenPrefix: 'bbt',
  });
  const app = (options: Parameters<typeof requireGroups>[0]) =>
    echoApp(makeApp, extractCredentials(), authenticateToken({ tokens }), requireGroups(options));
  const tokenOf = async (user: string) =>
    `Bearer ${(await tokens.create({ user, name: 'x', scope: 'read' })).token}`;

  it('lets members through and refuses others with 403', async () => {
    const resolver = staticGroups({ Alice: ['API-Users'], bob: ['other'] });
    const gate = app({ groups: ['api-users'], resolver });
    expect(
      (
        await request(gate)
          .get('/')
          .set('Authorization', await tokenOf('alice'))
      ).status,
    ).toBe(200);
    const refused = await request(gate)
      .get('/')
      .set('Authorization', await tokenOf('bob'));
    expect(refused.status).toBe(403);
    expect(refused.body.errors[0].code).toBe('GROUP_REQUIRED');
  });

  it('means everyone when groups are omitted and no one when they are empty', async () => {
    const resolver = staticGroups({ alice: ['x'] });
    expect(
      (
        await request(app({ resolver }))
          .get('/')
          .set('Authorization', await tokenOf('carol'))
      ).status,
    ).toBe(200);
    expect(
      (
        await request(app({ groups: [], resolver }))
          .get('/')
          .set('Authorization', await tokenOf('alice'))
      ).status,
    ).toBe(403);
  });

  it('is safe against user names like __proto__ and toString', async () => {
    const gate = app({ groups: ['admins'], resolver: staticGroups({ alice: ['admins'] }) });
    for (const user of ['__proto__', 'toString', 'constructor', 'hasOwnProperty']) {
      expect(
        (
          await request(gate)
            .get('/')
            .set('Authorization', await tokenOf(user))
        ).status,
      ).toBe(403);
    }
    const proto = app({ groups: ['admins'], resolver: staticGroups(JSON.parse('{"__proto__":["admins"]}')) });
    expect(
      (
        await request(proto)
          .get('/')
          .set('Authorization', await tokenOf('__proto__'))
      ).status,
    ).toBe(200);
  });

  it('asks the resolver once per request, and fails closed (503) when it throws', async () => {
    let calls = 0;
    const counting = app({
      groups: ['g'],
      resolver: async () => {
        calls++;
        return ['g'];
      },
    });
    await request(counting)
      .get('/')
      .set('Authorization', await tokenOf('alice'));
    expect(calls).toBe(1);
    const failing = app({ groups: ['g'], resolver: async () => Promise.reject(new Error('directory down')) });
    const res = await request(failing)
      .get('/')
      .set('Authorization', await tokenOf('alice'));
    expect(res.status).toBe(503);
    expect(res.body.errors[0].code).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('does not judge password or anonymous requests by default', async () => {
    const gate = app({ groups: [], resolver: staticGroups({}) });
    expect((await request(gate).get('/').set('Authorization', basic('a', 'pw'))).status).toBe(200);
    expect((await request(gate).get('/')).status).toBe(200);
  });

  it('throws at startup on bad groups', () => {
    expect(() => requireGroups({ groups: 'admins' as never })).toThrow(/`groups`/);
    expect(() => staticGroups({ alice: 'admins' } as never)).toThrow(/groups\["alice"\]/);
  });
});
