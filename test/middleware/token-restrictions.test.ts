import fc from 'fast-check';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenGate, type TokenGateOptions } from '../../lib/gate/create-token-gate.js';
import { authenticateToken } from '../../lib/middleware/authenticate-token.js';
import { extractCredentials } from '../../lib/middleware/extract-credentials.js';
import { tokenRestrictions } from '../../lib/middleware/token-restrictions.js';
import { pathTarget, prefixSegments } from '../../lib/request/resource-path.js';
import { compileResourcePatterns } from '../../lib/tokens/resource-pattern.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { openRedisStore } from '../support/redis-store.js';

const runs = Number(process.env['FUZZ_RUNS'] ?? 300);
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

const STORES: Array<[string, () => Promise<Pick<TokenGateOptions, 'store'>>]> = [
  ['memory store', async () => ({})],
  [
    'Redis store',
    async () => {
      const { store, cleanup } = await openRedisStore(
        new Redis(inject('redisUrl'), { enableOfflineQueue: false }),
      );
      cleanups.push(cleanup);
      return { store };
    },
  ],
];

describe.each(STORES)('token restrictions on the %s', (_name, openStore) => {
  const events: AuditEvent[] = [];
  const ready = (async () => {
    const gate = createTokenGate({
      ...(await openStore()),
      ipAllowlist: ['10.0.0.0/8', '2001:db8::/32'],
      trustedProxies: ['loopback'],
      onEvent: (e) => events.push(e),
    });
    cleanups.push(() => gate.close());
    return { gate, app: echoApp(EXPRESS_VERSIONS[1]![1], gate.protect()) };
  })();
  const tokenWith = async (restrictions: Record<string, unknown>, scope: 'read' | 'write' = 'read') => {
    const { gate } = await ready;
    return (await gate.tokens.create({ user: 'alice', name: 'r', scope, ...restrictions })).token;
  };
  const send = async (
    token: string,
    path = '/rest/api/1.0/projects/PROJ/repos/app/commits',
    { ip = '10.1.2.3', headers = {} as Record<string, string>, method = 'get' as 'get' | 'post' } = {},
  ) => {
    const { app } = await ready;
    return request(app)
      [method](path)
      .set('Authorization', `Bearer ${token}`)
      .set('X-Forwarded-For', ip)
      .set(headers);
  };
  const code = (res: { status: number; body: { errors?: Array<{ code: string }> } }) => [
    res.status,
    res.body.errors?.[0]?.code ?? null,
  ];

  it('admits an address only when both the gate’s allowlist and the token’s own list do', async () => {
    const token = await tokenWith({ allowedIps: ['10.1.0.0/16', '2001:db8:5::/48'] });
    expect(code(await send(token, undefined, { ip: '10.1.2.3' }))).toEqual([200, null]);
    expect(code(await send(token, undefined, { ip: '2001:db8:5::9' }))).toEqual([200, null]);
    expect(code(await send(token, undefined, { ip: '10.2.0.1' }))).toEqual([403, 'IP_NOT_ALLOWED']);
    // Inside the token's list but outside the gate's: still refused, the same way.
    const wide = await tokenWith({ allowedIps: ['0.0.0.0/0'] });
    expect(code(await send(wide, undefined, { ip: '192.0.2.1' }))).toEqual([403, 'IP_NOT_ALLOWED']);
  });

  it('takes first-last ranges', async () => {
    const token = await tokenWith({ allowedIps: ['10.0.0.10-10.0.0.20'] });
    expect((await send(token, undefined, { ip: '10.0.0.15' })).status).toBe(200);
    expect((await send(token, undefined, { ip: '10.0.0.21' })).status).toBe(403);
  });

  it('requires the headers it was created with, exact value, any name case', async () => {
    const token = await tokenWith({ requiredHeaders: { 'X-CI-Runner': 'build-7' } });
    expect((await send(token, undefined, { headers: { 'x-ci-runner': 'build-7' } })).status).toBe(200);
    expect(code(await send(token))).toEqual([403, 'HEADER_REQUIRED']);
    expect(code(await send(token, undefined, { headers: { 'X-CI-Runner': 'build-8' } }))).toEqual([
      403,
      'HEADER_REQUIRED',
    ]);
    expect((await send(token, undefined, { headers: { 'X-CI-Runner': 'Build-7' } })).status).toBe(403);
  });

  it('limits a token to its projects and repositories on REST and git paths', async () => {
    const token = await tokenWith({ resources: ['PROJ/app', 'LIB', '~alice/notes'] });
    for (const path of [
      '/rest/api/1.0/projects/PROJ/repos/app/commits',
      '/rest/api/latest/projects/proj/repos/APP',
      '/rest/branch-utils/1.0/projects/PROJ/repos/app/branches',
      '/rest/api/1.0/projects/LIB',
      '/rest/api/1.0/projects/LIB/repos/anything/browse',
      '/rest/api/1.0/users/alice/repos/notes',
      '/rest/api/1.0/projects/~ALICE/repos/notes',
      '/scm/proj/app.git/info/refs?service=git-upload-pack',
      '/scm/~alice/notes.git/info/refs',
      '/scm/lib/x/info/lfs/objects/abc',
      '/rest/api/1.0/application-properties',
      '/rest/api/1.0/users/alice',
    ])
      expect([path, (await send(token, path)).status]).toEqual([path, 200]);
    for (const path of [
      '/rest/api/1.0/projects/PROJ/repos/other',
      '/rest/api/1.0/projects/PROJ',
      '/rest/api/1.0/projects/PROJ/repos',
      '/rest/api/1.0/projects',
      '/rest/api/1.0/repos',
      '/rest/api/1.0/dashboard/pull-requests',
      '/rest/api/1.0/users/bob/repos/notes',
      '/rest/api/1.0/users/bob',
      '/scm/proj/other.git/info/refs',
      '/scm/~bob/notes.git/info/refs',
      '/somewhere/else',
    ])
      expect([path, code(await send(token, path))]).toEqual([path, [403, 'RESOURCE_NOT_ALLOWED']]);
  });

  it('never widens through encoding, dot segments, doubled slashes or path parameters', async () => {
    const token = await tokenWith({ resources: ['PROJ/app'] });
    for (const path of [
      '/rest/api/1.0/projects/PROJ/repos/app/../other',
      '/rest/api/1.0/projects/PROJ/repos/app/%2e%2e/other',
      '/rest/api/1.0/projects/PROJ/repos/app%2F..%2Fother',
      '/rest/api/1.0/projects/PROJ/repos//other',
      '//rest/api/1.0/projects/OTHER/repos/x',
      '/rest/api/1.0/projects/PROJ;x=1/repos/app',
      '/scm/proj/app.git%2F..%2F..%2Fother/x.git/info/refs',
      '/rest/api/1.0/projects/PROJ/repos/app%5C..%5Cother',
    ])
      expect([path, (await send(token, path)).status]).toEqual([path, 403]);
    // Percent-encoding of plain characters is decoded, not refused.
    expect((await send(token, '/rest/api/1.0/projects/%50ROJ/repos/app')).status).toBe(200);
  });

  it('combines restrictions: every one must admit the request, and scope still applies', async () => {
    const token = await tokenWith({
      allowedIps: ['10.1.0.0/16'],
      requiredHeaders: { 'X-Job': '42' },
      resources: ['PROJ/app'],
    });
    const ok = { ip: '10.1.0.5', headers: { 'X-Job': '42' } };
    expect((await send(token, undefined, ok)).status).toBe(200);
    expect((await send(token, undefined, { ...ok, ip: '10.9.0.5' })).status).toBe(403);
    expect((await send(token, undefined, { ...ok, headers: {} })).status).toBe(403);
    expect((await send(token, '/rest/api/1.0/projects/X/repos/y', ok)).status).toBe(403);
    expect(code(await send(token, undefined, { ...ok, method: 'post' }))).toEqual([
      403,
      'SCOPE_INSUFFICIENT',
    ]);
  });

  it('reports refusals without the expected header value', async () => {
    events.length = 0;
    const token = await tokenWith({ requiredHeaders: { 'X-Secret-Header': 'hunter2-value' } });
    await send(token);
    expect(events).toContainEqual(expect.objectContaining({ type: 'auth.denied', code: 'HEADER_REQUIRED' }));
    expect(JSON.stringify(events)).not.toContain('hunter2-value');
  });
});

describe('tokenRestrictions used alone', () => {
  it('resolves the client address itself when no clientIp step ran before it', async () => {
    const gate = createTokenGate();
    cleanups.push(() => gate.close());
    const { token } = await gate.tokens.create({
      user: 'a',
      name: 'x',
      scope: 'read',
      allowedIps: ['127.0.0.0/8'],
    });
    const far = await gate.tokens.create({ user: 'a', name: 'y', scope: 'read', allowedIps: ['10.0.0.0/8'] });
    const app = echoApp(
      EXPRESS_VERSIONS[1]![1],
      extractCredentials(),
      authenticateToken({ tokens: gate.tokens }),
      tokenRestrictions(),
    );
    expect((await request(app).get('/').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    expect((await request(app).get('/').set('Authorization', `Bearer ${far.token}`)).status).toBe(403);
  });
});

describe('resource paths', () => {
  const rules = { git: [prefixSegments('/scm/')], rest: [prefixSegments('/rest/')] };
  const segment = fc.stringMatching(/^[A-Za-z0-9_.~-]{1,8}$/).filter((s) => s !== '.' && s !== '..');
  /** A segment with some of its letters percent-encoded, as a client may send them. */
  const spelled = (s: string) =>
    fc
      .array(fc.boolean(), { minLength: s.length, maxLength: s.length })
      .map((flags) =>
        [...s]
          .map((c, i) => (flags[i] && /[A-Za-z]/.test(c) ? `%${c.charCodeAt(0).toString(16)}` : c))
          .join(''),
      );
  const part = fc.oneof(
    segment,
    fc.constantFrom('..', '.', '', '%2e%2e', '%2F', '%5C', ';x', 'PROJ', 'app', 'app.git', 'repos'),
  );

  it('no spelling of a path reaches a repository the decoded path does not name', () => {
    const allowed = compileResourcePatterns(['PROJ/app']);
    let admitted = 0;
    fc.assert(
      fc.property(
        fc.constantFrom('/rest/api/1.0/projects/', '/scm/', '/REST/api/1.0/projects/', '/SCM/', '/'),
        fc.array(part, { maxLength: 3 }),
        spelled('PROJ'),
        fc.constantFrom('/', '/repos/'),
        spelled('app'),
        fc.array(part, { maxLength: 4 }),
        (prefix, head, project, middle, repo, tail) => {
          const path = `${prefix}${[...head, project].join('/')}${middle}${[repo, ...tail].join('/')}`;
          const target = pathTarget(path, rules);
          if (target.kind !== 'target' || !allowed(target.target)) return;
          admitted++;
          // Admitted: then the path, read plainly, names PROJ/app and nothing that moves elsewhere.
          const plain = decodeURIComponent(path).toLowerCase();
          expect(plain).not.toMatch(/\/\.\.?(\/|$)|\/\/|[;\\]/);
          expect(plain).toMatch(
            /^\/(scm\/proj\/app(\.git)?(\/|$)|rest\/[^/]+\/[^/]+\/projects\/proj\/repos\/app(\/|$))/,
          );
        },
      ),
      { numRuns: runs },
    );
    expect(admitted).toBeGreaterThan(0);
  });

  it('matches wildcards inside one segment only, case-insensitively', () => {
    const allowed = compileResourcePatterns(['OPS/deploy-*', '~bob/*']);
    expect(allowed({ project: 'ops', repo: 'Deploy-web' })).toBe(true);
    expect(allowed({ project: 'OPS', repo: 'web' })).toBe(false);
    expect(allowed({ project: 'OPS' })).toBe(false);
    expect(allowed({ project: '~BOB', repo: 'x' })).toBe(true);
    expect(allowed({ project: 'BOB', repo: 'x' })).toBe(false);
    expect(compileResourcePatterns(['*'])({ project: '~alice', repo: 'x' })).toBe(false);
  });
});
