import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenExchangeGrant, TOKEN_EXCHANGE_GRANT } from '../../lib/federation/token-exchange.js';
import { compileTrustRules } from '../../lib/federation/trust-rules.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { type CiIssuer, startCiIssuer } from '../support/ci-issuer.js';
import { tokenEndpointApp } from '../support/token-endpoint.js';

const AUDIENCE = 'https://git.example.com';
const REFUSED = { error: 'invalid_request', error_description: 'The subject token is not accepted.' };

/** Job tokens whose header tries to bring its own key, or whose issuer is spelled differently. */
describe('job token headers and issuer spellings', () => {
  let ci: CiIssuer;
  let attacker: CiIssuer;
  const events: AuditEvent[] = [];
  let app: ReturnType<typeof tokenEndpointApp>;
  let store: MemoryTokenStore;

  beforeAll(async () => {
    ci = await startCiIssuer();
    attacker = await startCiIssuer();
    store = new MemoryTokenStore();
    const tokens = new TokenService({ store, hasher: sha256Hasher({ pepper: 'header attacks' }) });
    const grant = createTokenExchangeGrant({
      tokens,
      store,
      rules: compileTrustRules([
        {
          name: 'deploy',
          issuer: ci.issuer,
          audience: AUDIENCE,
          claims: { project_path: 'ops/deploy' },
          user: 'ci-deploy',
          scope: 'read',
          allowInsecureLoopback: true,
        },
      ]),
      emit: (e) => events.push(e),
    });
    app = tokenEndpointApp({ [TOKEN_EXCHANGE_GRANT]: grant });
    // The trusted keys are fetched once, with a genuine token.
    expect((await exchange(await ci.sign())).status).toBe(200);
  });
  afterAll(async () => {
    await ci.close();
    await attacker.close();
  });

  const exchange = (subjectToken: string) =>
    request(app).post('/oauth/token').type('form').send({
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });

  async function selfSigned(header: Record<string, unknown>): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ sub: 'x', project_path: 'ops/deploy', jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'RS256', jwk: await exportJWK(publicKey), ...header })
      .setIssuer(ci.issuer)
      .setAudience(AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(privateKey);
  }

  it.each([
    ['an embedded `jwk`', () => selfSigned({})],
    ['a `jku` pointing at another key set', () => selfSigned({ jku: `${attacker.issuer}/jwks` })],
    ['an `x5u`', () => selfSigned({ x5u: `${attacker.issuer}/cert.pem` })],
    ['a `kid` of the trusted key on a foreign signature', () => selfSigned({ kid: ci.publicJwk.kid })],
    ['a `kid` with path characters', () => selfSigned({ kid: '../../../etc/passwd' })],
    ['the issuer with a trailing slash', () => ci.sign({ iss: `${ci.issuer}/` })],
    ['the issuer in upper case', () => ci.sign({ iss: ci.issuer.toUpperCase() })],
    ['the issuer as an array', () => ci.sign({ iss: [ci.issuer] })],
    ['an audience that only starts like ours', () => ci.sign({ aud: `${AUDIENCE}.evil.example` })],
  ])('refuses %s, fetching nothing from the attacker', async (_what, make) => {
    const token = await make();
    const before = (await store.search({ start: 0, limit: 100 })).values.length;
    const res = await exchange(token);
    expect(res.status).toBe(400);
    expect(res.body).toEqual(REFUSED);
    expect((await store.search({ start: 0, limit: 100 })).values.length).toBe(before);
    expect(attacker.requests).toEqual({ discovery: 0, jwks: 0 });
  });

  it('takes an audience array holding ours among others (the job asked for several)', async () => {
    const res = await exchange(await ci.sign({ aud: ['https://other.example', AUDIENCE] }));
    expect(res.status, res.text).toBe(200);
  });
});
