import fc from 'fast-check';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { authenticateToken } from '../../lib/middleware/authenticate-token.js';
import { extractCredentials } from '../../lib/middleware/extract-credentials.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { basic, EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

const runs = Number(process.env['FUZZ_RUNS'] ?? 200);

describe.each(EXPRESS_VERSIONS)('extractCredentials on %s', (_name, makeApp) => {
  const app = echoApp(makeApp, extractCredentials());

  it('passes a request without credentials on as anonymous', async () => {
    const res = await request(app).get('/rest/api/1.0/projects');
    expect(res.status).toBe(200);
    expect(res.body.auth).toMatchObject({ kind: 'anonymous' });
  });

  it('refuses a request without credentials with 401 when anonymous is denied', async () => {
    const res = await request(echoApp(makeApp, extractCredentials({ anonymous: 'deny' }))).get('/rest');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toContain('Basic realm=');
    expect(res.body.errors[0].code).toBe('CREDENTIALS_MISSING');
  });

  it('reads a Basic password as kind password with the claimed user, keeping the header', async () => {
    const res = await request(app).get('/rest').set('Authorization', basic('alice', 'hunter2'));
    expect(res.body.auth).toEqual({ kind: 'password', user: 'alice' });
    expect(res.body.headers.authorization).toBe(basic('alice', 'hunter2'));
  });

  it('matches the scheme case-insensitively', async () => {
    const header = basic('alice', 'pw').replace('Basic', 'bAsIc');
    expect((await request(app).get('/rest').set('Authorization', header)).body.auth.kind).toBe('password');
  });

  it.each([
    ['Bearer', 'a scheme with no value'],
    ['Bearer ', 'an empty bearer'],
    ['Bearer abc def', 'trailing junk'],
    ['Basic', 'basic with no value'],
    ['Basic !!!notbase64', 'malformed base64'],
    ['Basic YWxpY2U=', 'no colon'],
    ['Basic YWxpY2U6cHc', 'missing padding'],
    [`Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString('base64')}`, 'invalid UTF-8'],
    [`Basic ${Buffer.from('a\u0000b:pw').toString('base64')}`, 'a NUL byte'],
    [`Bearer ${'a'.repeat(9000)}`, 'a huge header'],
  ])('answers 400 for %j (%s)', async (header) => {
    const res = await request(app).get('/rest').set('Authorization', header);
    expect(res.status).toBe(400);
    expect(res.body.errors[0].code).toBe('CREDENTIALS_MALFORMED');
  });

  it('answers 401 for an unsupported scheme', async () => {
    const res = await request(app).get('/rest').set('Authorization', 'Digest username="a"');
    expect(res.status).toBe(401);
    expect(res.body.errors[0].code).toBe('CREDENTIALS_UNSUPPORTED');
  });

  it('refuses two Authorization headers with 400', async () => {
    const res = await request(app)
      .get('/rest')
      .set('Authorization', [basic('a', 'b'), 'Bearer x'] as unknown as string);
    expect(res.status).toBe(400);
  });

  it('never takes a token from the query string', async () => {
    const res = await request(app).get('/rest?access_token=bbt_x&token=bbt_y');
    expect(res.body.auth.kind).toBe('anonymous');
  });

  it('throws at startup on bad options, naming them', () => {
    expect(() => extractCredentials({ anonymous: 'maybe' as never })).toThrow(/`anonymous`/);
    expect(() => extractCredentials({ tokenPrefix: 'NO' })).toThrow(/`tokenPrefix`/);
  });
});

describe('credential parsing under arbitrary input', () => {
  const tokens = new TokenService({
    store: new MemoryTokenStore(),
    hasher: sha256Hasher(),
    tokenPrefix: 'bbt',
  });
  const app = echoApp(EXPRESS_VERSIONS[1]![1], extractCredentials(), authenticateToken({ tokens }));
  const headerSafe = (s: string) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '');

  it('never crashes and never authenticates a token on arbitrary Authorization values', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.string({ maxLength: 200 }).map((s) => `Bearer ${s}`),
          fc.string({ maxLength: 200 }).map((s) => `Bearer bbt_${s}`),
          fc.uint8Array({ maxLength: 200 }).map((b) => `Basic ${Buffer.from(b).toString('base64')}`),
          fc.string({ maxLength: 200 }).map((s) => `Basic ${Buffer.from(`x:bbt_${s}`).toString('base64')}`),
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
        ),
        async (raw) => {
          const header = headerSafe(raw);
          const res = await request(app).get('/rest').set('Authorization', header);
          expect([200, 400, 401]).toContain(res.status);
          if (res.status === 200) expect(res.body.auth.kind).not.toBe('token');
        },
      ),
      { numRuns: Math.min(runs, 200) },
    );
  });
});
