import { randomBytes } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { TOKEN_EXCHANGE_GRANT } from '../../lib/federation/token-exchange.js';
import type { FederationRule } from '../../lib/federation/trust-rules.js';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import type { TokenStore } from '../../lib/stores/token-store.js';
import { bitbucketAccessTokens } from '../../lib/upstream/bitbucket-access-tokens.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { type CiIssuer, startCiIssuer } from '../support/ci-issuer.js';

const AUDIENCE = 'https://git.example.com';

describe('createTokenGate({ federation })', () => {
  let ci: CiIssuer;
  let gate: TokenGate;
  const events: AuditEvent[] = [];
  let app: express.Express;
  const rule = (): FederationRule => ({
    name: 'deploy',
    issuer: ci.issuer,
    audience: AUDIENCE,
    claims: { project_path: 'ops/deploy' },
    user: 'ci-deploy',
    scope: 'read',
    allowedIps: ['127.0.0.1'],
    allowInsecureLoopback: true,
  });

  beforeAll(async () => {
    ci = await startCiIssuer();
    gate = createTokenGate({ federation: [rule()], onEvent: (e) => events.push(e), auditSuccess: true });
    app = express();
    app.use('/oauth', gate.oauth());
    app.get('/.well-known/oauth-authorization-server', gate.oauthMetadata());
    app.use('/rest', echoApp(EXPRESS_VERSIONS[1]![1], gate.protect()));
  });
  afterAll(async () => {
    await gate.close();
    await ci.close();
  });

  const exchange = async (jobToken: string) =>
    request(app)
      .post('/oauth/token')
      .type('form')
      .send(
        new URLSearchParams({
          grant_type: TOKEN_EXCHANGE_GRANT,
          subject_token: jobToken,
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        }).toString(),
      );

  it('serves the exchange on the OAuth token endpoint, and the token passes protect()', async () => {
    const res = await exchange(await ci.sign());
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const through = await request(app)
      .get('/rest/api/1.0/projects')
      .set('Authorization', `Bearer ${res.body.access_token}`);
    expect(through.status).toBe(200);
    expect(through.body.auth).toMatchObject({ kind: 'token', user: 'ci-deploy' });
    // The rule's restrictions hold on the request path like any token's: a read token cannot write.
    const write = await request(app)
      .post('/rest/api/1.0/projects')
      .set('Authorization', `Bearer ${res.body.access_token}`);
    expect(write.status).toBe(403);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['token.created', 'token.exchanged', 'auth.succeeded', 'auth.denied']),
    );
  });

  it('answers a refused job token on that endpoint as invalid_request (RFC 8693 §2.2.2)', async () => {
    const res = await exchange(await ci.sign({ project_path: 'ops/other' }));
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'invalid_request',
      error_description: 'The subject token is not accepted.',
    });
  });

  it('lists the token-exchange grant in the authorization server metadata', async () => {
    const res = await request(app).get('/.well-known/oauth-authorization-server');
    expect(res.body.grant_types_supported).toContain(TOKEN_EXCHANGE_GRANT);
  });

  it('refuses bad rules at startup, naming the option', () => {
    expect(() => createTokenGate({ federation: [{ ...rule(), ttlSeconds: 7_200 }] })).toThrow(
      '`federation[0].ttlSeconds` must be an integer from 10 to 3600',
    );
    expect(() => createTokenGate({ federation: [{ ...rule(), allowInsecureLoopback: false }] })).toThrow(
      /`federation\[0\]\.issuer` must be an https: URL/,
    );
  });

  it('refuses a store that cannot claim job tokens fleet-wide, and access-token mode', () => {
    const memory = new MemoryTokenStore();
    const withoutClaim: TokenStore = {
      put: (r) => memory.put(r),
      get: (id) => memory.get(id),
      listByUser: (u) => memory.listByUser(u),
      update: (id, c) => memory.update(id, c),
      delete: (id) => memory.delete(id),
      touch: (id, at, ip) => memory.touch(id, at, ip),
      search: (q) => memory.search(q),
    };
    expect(() => createTokenGate({ store: withoutClaim, federation: [rule()] })).toThrow(
      /`federation` needs a store with `claim\(\)` and `putCounted\(\)`/,
    );
    expect(() =>
      createTokenGate({
        federation: [rule()],
        upstream: bitbucketAccessTokens({
          baseUrl: 'https://bitbucket.example.com',
          encryptionKeys: [{ id: 'k', key: randomBytes(32) }],
        }),
      }),
    ).toThrow(/`federation` cannot issue tokens in access-token mode/);
  });
});
