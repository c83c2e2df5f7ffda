import { createPublicKey } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Express } from 'express';
import { base64url, SignJWT } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenExchangeGrant, TOKEN_EXCHANGE_GRANT } from '../../lib/federation/token-exchange.js';
import { compileTrustRules, type FederationRule } from '../../lib/federation/trust-rules.js';
import type { GrantHandler } from '../../lib/oauth/grants.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { type CiIssuer, startCiIssuer } from '../support/ci-issuer.js';
import { tokenEndpointApp } from '../support/token-endpoint.js';

const AUDIENCE = 'https://git.example.com';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const REFUSED = { error: 'invalid_request', error_description: 'The subject token is not accepted.' };

function rulesFor(issuer: string, extra: Partial<FederationRule> = {}): FederationRule[] {
  return [
    {
      name: 'deploy',
      issuer,
      audience: AUDIENCE,
      claims: { project_path: 'ops/deploy', ref_type: 'branch', ref: ['main', 'release/*'] },
      user: 'ci-deploy',
      scope: 'write',
      resources: ['OPS/deploy'],
      ttlSeconds: 600,
      allowInsecureLoopback: true,
      ...extra,
    },
    {
      name: 'ops-read',
      issuer,
      audience: AUDIENCE,
      claims: { project_path: 'ops/*' },
      user: 'ci-ops',
      scope: 'read',
      allowInsecureLoopback: true,
    },
  ];
}

/** One proxy instance: a token service on `store`, the exchange, and a token endpoint around it. */
function instance(
  store: TokenStore,
  issuer: string,
  options: { maxTokensPerUser?: number; keysRefetchIntervalMs?: number; rules?: FederationRule[] } = {},
) {
  const events: AuditEvent[] = [];
  const tokens = new TokenService({
    store,
    hasher: sha256Hasher({ pepper: 'federation tests' }),
    onEvent: (e) => events.push(e),
    ...(options.maxTokensPerUser === undefined ? {} : { maxTokensPerUser: options.maxTokensPerUser }),
  });
  const grant: GrantHandler = createTokenExchangeGrant({
    tokens,
    store,
    rules: compileTrustRules(options.rules ?? rulesFor(issuer)),
    emit: (e) => events.push(e),
    ...(options.keysRefetchIntervalMs === undefined
      ? {}
      : { keysRefetchIntervalMs: options.keysRefetchIntervalMs }),
  });
  const app = tokenEndpointApp({ [TOKEN_EXCHANGE_GRANT]: grant });
  return { tokens, grant, app, events };
}

const exchange = (app: Express, subjectToken: string, extra: Record<string, string> = {}) =>
  request(app)
    .post('/oauth/token')
    .type('form')
    .send(
      new URLSearchParams({
        grant_type: TOKEN_EXCHANGE_GRANT,
        subject_token: subjectToken,
        subject_token_type: JWT_TYPE,
        ...extra,
      }).toString(),
    );

const seconds = () => Math.floor(Date.now() / 1000);

describe('token exchange (RFC 8693) of CI job tokens', () => {
  let ci: CiIssuer;
  let stranger: CiIssuer;

  beforeAll(async () => {
    ci = await startCiIssuer();
    stranger = await startCiIssuer();
  });
  afterAll(async () => {
    await ci.close();
    await stranger.close();
  });

  describe('a job token that a rule trusts', () => {
    it('is exchanged for a short-lived API token limited to what the rule gives', async () => {
      const store = new MemoryTokenStore();
      const { app, tokens, events } = instance(store, ci.issuer);
      const jobToken = await ci.sign();
      const before = Date.now();
      const res = await exchange(app, jobToken);
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toEqual({
        access_token: expect.stringMatching(/^bbt_/),
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: 600,
        scope: 'write',
      });
      const info = await tokens.verify(res.body.access_token);
      expect(info).toMatchObject({
        user: 'ci-deploy',
        scope: 'write',
        createdBy: 'federation',
        resources: ['OPS/deploy'],
        allowedIps: null,
        name: `${new URL(ci.issuer).host} project_path:ops/deploy:ref_type:branch:ref:main`,
        origin: { via: 'federation', client: 'deploy', ip: expect.any(String) },
      });
      const expiresAt = Date.parse(info!.expiresAt!);
      expect(expiresAt).toBeGreaterThanOrEqual(before + 600_000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 600_000);
      // Visible to the owner and in the token manager like any other token.
      expect((await tokens.list('ci-deploy')).map((t) => t.id)).toEqual([info!.id]);
      const exchanged = events.find((e) => e.type === 'token.exchanged');
      expect(exchanged).toEqual({
        type: 'token.exchanged',
        time: expect.any(String),
        clientIp: expect.any(String),
        issuer: ci.issuer,
        subject: 'project_path:ops/deploy:ref_type:branch:ref:main',
        jti: expect.any(String),
        rule: 'deploy',
        user: 'ci-deploy',
        tokenId: info!.id,
        scope: 'write',
        expiresAt: info!.expiresAt,
      });
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'token.created', actor: 'federation', tokenId: info!.id }),
      );
      // Neither the job token, nor its signature, nor the issued secret reach the audit log.
      const log = JSON.stringify(events);
      expect(log).not.toContain(jobToken.split('.')[2]);
      expect(log).not.toContain(res.body.access_token);
    });

    it('also takes the id_token type, and gives the first matching rule', async () => {
      const { app, tokens } = instance(new MemoryTokenStore(), ci.issuer);
      const res = await exchange(app, await ci.sign({ ref: 'feature/x' }), {
        subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      });
      expect(res.status).toBe(200);
      // ops/deploy on a feature branch misses `deploy` and falls to `ops-read`.
      expect(await tokens.verify(res.body.access_token)).toMatchObject({ user: 'ci-ops', scope: 'read' });
      const main = await exchange(app, await ci.sign({ ref: 'release/2.0' }));
      expect(await tokens.verify(main.body.access_token)).toMatchObject({
        user: 'ci-deploy',
        scope: 'write',
      });
    });

    it('narrows to `scope=read` when asked, and never widens a read rule', async () => {
      const { app, tokens, events } = instance(new MemoryTokenStore(), ci.issuer);
      const narrowed = await exchange(app, await ci.sign(), { scope: 'read' });
      expect(narrowed.body.scope).toBe('read');
      expect(await tokens.verify(narrowed.body.access_token)).toMatchObject({
        user: 'ci-deploy',
        scope: 'read',
      });
      const widened = await exchange(app, await ci.sign({ project_path: 'ops/docs' }), { scope: 'write' });
      expect(widened.status).toBe(400);
      expect(widened.body.error).toBe('invalid_scope');
      expect(widened.body.access_token).toBeUndefined();
      expect(events.at(-1)).toMatchObject({
        type: 'token.exchange-refused',
        reason: 'scope',
        rule: 'ops-read',
      });
    });

    it("does not count against the user's cap, and is bounded per rule instead", async () => {
      const { app, tokens, events } = instance(new MemoryTokenStore(), ci.issuer, {
        maxTokensPerUser: 1,
        rules: rulesFor(ci.issuer, { maxLiveTokens: 3 }),
      });
      for (let i = 0; i < 3; i++) expect((await exchange(app, await ci.sign())).status).toBe(200);
      expect(await tokens.list('ci-deploy')).toHaveLength(3);
      const full = await exchange(app, await ci.sign());
      expect(full.status).toBe(429);
      expect(full.body.error).toBe('temporarily_unavailable');
      expect(full.body.access_token).toBeUndefined();
      expect(events.at(-1)).toMatchObject({
        type: 'token.exchange-refused',
        reason: 'rule_limit',
        rule: 'deploy',
      });
      // Another rule has its own bound.
      expect((await exchange(app, await ci.sign({ project_path: 'ops/docs' }))).status).toBe(200);
      // The user's own token still fits under a cap of one; a second does not.
      await tokens.create({ user: 'ci-deploy', name: 'own', scope: 'read' });
      await expect(tokens.create({ user: 'ci-deploy', name: 'own 2', scope: 'read' })).rejects.toMatchObject({
        code: 'TOKEN_LIMIT_REACHED',
      });
      // Revoking one makes room under the rule again.
      await tokens.revoke((await tokens.list('ci-deploy')).find((t) => t.createdBy === 'federation')!.id);
      expect((await exchange(app, await ci.sign())).status).toBe(200);
    });
  });

  describe('refusals: 400 invalid_request, no token, the reason only in the audit log', () => {
    let store: MemoryTokenStore;
    let setup: ReturnType<typeof instance>;

    beforeAll(async () => {
      store = new MemoryTokenStore();
      setup = instance(store, ci.issuer);
      // Keys are fetched and cached: the refusals below are judged with them.
      expect((await exchange(setup.app, await ci.sign())).status).toBe(200);
    });

    const hmacWithPublicKey = async () => {
      // The classic confusion attack: the issuer's public key, as PEM, used as an HMAC secret.
      const publicKey = createPublicKey({ key: ci.publicJwk as never, format: 'jwk' });
      const pem = publicKey.export({ type: 'spki', format: 'pem' });
      const now = seconds();
      return new SignJWT({ sub: 'x', project_path: 'ops/deploy', ref_type: 'branch', ref: 'main', jti: 'hs' })
        .setProtectedHeader({ alg: 'HS256', kid: ci.publicJwk.kid! })
        .setIssuer(ci.issuer)
        .setAudience(AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(new TextEncoder().encode(pem as string));
    };
    const unsecured = async () => {
      const now = seconds();
      const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
      const payload = base64url.encode(
        JSON.stringify({
          iss: ci.issuer,
          aud: AUDIENCE,
          sub: 'x',
          iat: now,
          exp: now + 300,
          jti: 'none',
          project_path: 'ops/deploy',
          ref_type: 'branch',
          ref: 'main',
        }),
      );
      return `${header}.${payload}.`;
    };
    const tampered = async () => {
      const [header, payload, signature] = (await ci.sign({ project_path: 'ops/other' })).split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
      const forged = base64url.encode(JSON.stringify({ ...claims, project_path: 'ops/deploy' }));
      return `${header}.${forged}.${signature}`;
    };

    it.each([
      ['a token of an issuer no rule names', () => stranger.sign(), 'issuer'],
      [
        'a token naming a trusted issuer it was not signed by',
        () => stranger.sign({ iss: ci.issuer }),
        'unknown_key',
      ],
      ['a wrong audience', () => ci.sign({ aud: 'https://elsewhere.example.com' }), 'audience'],
      ['an expired token', () => ci.sign({ iat: seconds() - 120, exp: seconds() - 1 }), 'expired'],
      [
        'a token older than ten minutes',
        () => ci.sign({ iat: seconds() - 610, exp: seconds() + 300 }),
        'too_old',
      ],
      [
        'a token issued in the future',
        () => ci.sign({ iat: seconds() + 120, nbf: seconds() }),
        'not_yet_valid',
      ],
      ['a token not yet valid', () => ci.sign({ nbf: seconds() + 120 }), 'not_yet_valid'],
      ['a claim that no rule allows', () => ci.sign({ project_path: 'web/shop' }), 'claims'],
      ['a claim of the wrong type', () => ci.sign({ project_path: ['ops/deploy'] }), 'claims'],
      ['`alg: none`', unsecured, 'algorithm'],
      ['HS256 signed with the issuer’s public key', hmacWithPublicKey, 'algorithm'],
      ['a forged claim under a genuine signature', tampered, 'signature'],
      ['a token without `sub`', () => ci.sign({ sub: undefined }), 'malformed'],
      ['a token without `exp`', () => ci.sign({ exp: undefined }), 'malformed'],
      ['something that is not a JWT', async () => 'not-a-jwt', 'malformed'],
    ])('refuses %s', async (_what, make, reason) => {
      const before = (await store.search({ start: 0, limit: 1_000 })).values.length;
      const res = await exchange(setup.app, await make());
      expect(res.status).toBe(400);
      expect(res.body).toEqual(REFUSED);
      expect((await store.search({ start: 0, limit: 1_000 })).values).toHaveLength(before);
      expect(setup.events.at(-1)).toMatchObject({ type: 'token.exchange-refused', reason });
    });

    it('refuses a replayed job token, and another token with the same jti', async () => {
      const jobToken = await ci.sign({ jti: 'job-4711' });
      expect((await exchange(setup.app, jobToken)).status).toBe(200);
      const replay = await exchange(setup.app, jobToken);
      expect(replay.status).toBe(400);
      expect(replay.body).toEqual(REFUSED);
      expect(setup.events.at(-1)).toMatchObject({ reason: 'replayed', rule: 'deploy', issuer: ci.issuer });
      expect((await exchange(setup.app, await ci.sign({ jti: 'job-4711', ref: 'release/1' }))).body).toEqual(
        REFUSED,
      );
    });

    it('uses a token without a jti once too', async () => {
      const jobToken = await ci.sign({ jti: undefined });
      expect((await exchange(setup.app, jobToken)).status).toBe(200);
      expect((await exchange(setup.app, jobToken)).body).toEqual(REFUSED);
      expect(setup.events.at(-1)).toMatchObject({ reason: 'replayed' });
    });

    it.each([
      [{ subject_token: '' }, 'invalid_request', /`subject_token`/],
      [
        { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' },
        'invalid_request',
        /subject_token_type/,
      ],
      [
        { requested_token_type: 'urn:ietf:params:oauth:token-type:jwt' },
        'invalid_request',
        /requested_token_type/,
      ],
      [{ resource: 'https://elsewhere.example.com' }, 'invalid_target', /resource/],
      [{ audience: 'elsewhere' }, 'invalid_target', /audience/],
      [{ actor_token: 'x', actor_token_type: JWT_TYPE }, 'invalid_request', /actor_token/],
      [{ scope: 'admin' }, 'invalid_scope', /read or write/],
    ])('answers %j with %s', async (extra, error, description) => {
      const res = await exchange(setup.app, await ci.sign(), extra);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe(error);
      expect(res.body.error_description).toMatch(description);
    });

    it('refuses a parameter given twice', async () => {
      const jobToken = await ci.sign();
      const form = `grant_type=${encodeURIComponent(TOKEN_EXCHANGE_GRANT)}&subject_token=${jobToken}&subject_token=${jobToken}&subject_token_type=${encodeURIComponent(JWT_TYPE)}`;
      const res = await request(setup.app).post('/oauth/token').type('form').send(form);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        error: 'invalid_request',
        error_description: '`subject_token` is given more than once.',
      });
    });
  });

  describe('the issuer’s keys', () => {
    it('are fetched once and cached; an unknown kid is refused after one refetch, at most once per interval', async () => {
      const own = await startCiIssuer();
      try {
        const { app, events } = instance(new MemoryTokenStore(), own.issuer, { keysRefetchIntervalMs: 500 });
        for (let i = 0; i < 3; i++) expect((await exchange(app, await own.sign())).status).toBe(200);
        expect(own.requests).toEqual({ discovery: 1, jwks: 1 });
        await sleep(600);
        const unknownKid = await own.sign({}, { key: 'unpublished' });
        expect((await exchange(app, unknownKid)).body).toEqual(REFUSED);
        expect(events.at(-1)).toMatchObject({ reason: 'unknown_key' });
        expect(own.requests.jwks).toBe(2); // refetched once in case of a rotation
        // Unknown kids within the interval cause no further fetch: forged kids cannot hammer the issuer.
        for (let i = 0; i < 5; i++) expect((await exchange(app, unknownKid)).body).toEqual(REFUSED);
        expect(own.requests.jwks).toBe(2);
      } finally {
        await own.close();
      }
    });

    it('rotate: a new kid is fetched and works; a retired key stops working', async () => {
      const own = await startCiIssuer();
      try {
        const { app } = instance(new MemoryTokenStore(), own.issuer, { keysRefetchIntervalMs: 200 });
        expect((await exchange(app, await own.sign())).status).toBe(200);
        const oldKey = await own.sign();
        await own.rotate({ retireOld: true, alg: 'ES256' });
        await sleep(250);
        expect((await exchange(app, await own.sign())).status).toBe(200);
        expect(own.requests.jwks).toBe(2);
        expect((await exchange(app, oldKey)).body).toEqual(REFUSED);
        await own.rotate({ alg: 'EdDSA' });
        await sleep(250);
        expect((await exchange(app, await own.sign())).status).toBe(200);
        await own.rotate({ alg: 'PS256' });
        await sleep(250);
        expect((await exchange(app, await own.sign())).status).toBe(200);
      } finally {
        await own.close();
      }
    });

    it.each([
      [
        'names another issuer in its discovery document',
        { discovery: { issuer: 'https://evil.example.com' } },
      ],
      [
        'points to keys over plain http off loopback',
        { discovery: { jwks_uri: 'http://keys.example.com/jwks' } },
      ],
      ['answers 500 for its keys', { jwksStatus: 500 }],
    ])('an issuer that %s means 503 and never a token', async (_what, options) => {
      const own = await startCiIssuer(options);
      try {
        const store = new MemoryTokenStore();
        const { app } = instance(store, own.issuer);
        const res = await exchange(app, await own.sign());
        expect(res.status).toBe(503);
        expect(res.body.error).toBe('temporarily_unavailable');
        expect((await store.search({ start: 0, limit: 10 })).values).toEqual([]);
      } finally {
        await own.close();
      }
    });

    it('an issuer that cannot be reached means 503 and never a token; cached keys keep working', async () => {
      const own = await startCiIssuer();
      try {
        const store = new MemoryTokenStore();
        const { app } = instance(store, own.issuer);
        const early = await own.sign();
        await own.stop();
        const down = await exchange(app, early);
        expect(down.status).toBe(503);
        expect(down.body).toEqual({
          error: 'temporarily_unavailable',
          error_description: 'Tokens cannot be issued right now. Try again shortly.',
        });
        expect((await store.search({ start: 0, limit: 10 })).values).toEqual([]);
        await own.start();
        // The 503 did not burn the job token: the job can retry it.
        expect((await exchange(app, early)).status).toBe(200);
        await own.stop();
        expect((await exchange(app, await own.sign())).status).toBe(200);
      } finally {
        await own.close();
      }
    });
  });
});
