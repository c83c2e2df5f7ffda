import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { authenticateToken } from '../../lib/middleware/authenticate-token.js';
import { clientIp } from '../../lib/middleware/client-ip.js';
import { extractCredentials } from '../../lib/middleware/extract-credentials.js';
import { ipAllowlist } from '../../lib/middleware/ip-allowlist.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { basic, EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

describe.each(EXPRESS_VERSIONS)('ipAllowlist on %s', (_name, makeApp) => {
  const tokens = new TokenService({
    store: new MemoryTokenStore(),
    hasher: sha256Hasher(),
    tokenPrefix: 'bbt',
  });
  const path = (allow: string[], options: { forPasswords?: boolean } = {}) =>
    echoApp(
      makeApp,
      clientIp({ trustedProxies: ['loopback'] }),
      extractCredentials(),
      authenticateToken({ tokens }),
      ipAllowlist({ allow, ...options }),
    );

  it('lets a token through from an allowed address, IPv4 or IPv6', async () => {
    const { token } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    const app = path(['203.0.113.0/24', '2001:db8::/32']);
    for (const ip of ['203.0.113.9', '::ffff:203.0.113.9', '2001:db8::42']) {
      const res = await request(app)
        .get('/')
        .set('Authorization', `Bearer ${token}`)
        .set('X-Forwarded-For', ip);
      expect(res.status).toBe(200);
    }
  });

  it('refuses a token from outside the list, and from an unknown address, with 403', async () => {
    const { token } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    const app = path(['203.0.113.0/24']);
    const outside = await request(app)
      .get('/')
      .set('Authorization', `Bearer ${token}`)
      .set('X-Forwarded-For', '198.51.100.1');
    expect(outside.status).toBe(403);
    expect(outside.body.errors[0]).toMatchObject({
      code: 'IP_NOT_ALLOWED',
      message: expect.stringContaining('198.51.100.1'),
    });
    const unknown = await request(app).get('/').set('Authorization', `Bearer ${token}`);
    expect(unknown.status).toBe(403);
    const junk = await request(app)
      .get('/')
      .set('Authorization', `Bearer ${token}`)
      .set('X-Forwarded-For', '0xCB.0.113.9');
    expect(junk.status).toBe(403);
  });

  it('judges passwords only when asked to, and anonymous requests never', async () => {
    const away = { 'X-Forwarded-For': '198.51.100.1' };
    expect(
      (
        await request(path(['203.0.113.0/24']))
          .get('/')
          .set(away)
          .set('Authorization', basic('a', 'pw'))
      ).status,
    ).toBe(200);
    const strict = path(['203.0.113.0/24'], { forPasswords: true });
    expect((await request(strict).get('/').set(away).set('Authorization', basic('a', 'pw'))).status).toBe(
      403,
    );
    expect((await request(strict).get('/').set(away)).status).toBe(200);
  });

  it('resolves the socket address itself when used alone', async () => {
    const { token } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
    const alone = echoApp(
      makeApp,
      extractCredentials(),
      authenticateToken({ tokens }),
      ipAllowlist({ allow: ['127.0.0.1'] }),
    );
    expect((await request(alone).get('/').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    const elsewhere = echoApp(
      makeApp,
      extractCredentials(),
      authenticateToken({ tokens }),
      ipAllowlist({ allow: ['10.0.0.0/8'] }),
    );
    expect((await request(elsewhere).get('/').set('Authorization', `Bearer ${token}`)).status).toBe(403);
  });

  it('throws at startup on a bad entry, naming it', () => {
    expect(() => ipAllowlist({ allow: ['10.0.0.0/8', '10.0.0.0/33'] })).toThrow(
      '`ipAllowlist[1]` is not an IP address, CIDR range or first-last range: "10.0.0.0/33"',
    );
  });
});
