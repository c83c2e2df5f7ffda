import { createHash, randomBytes } from 'node:crypto';
import express, { type Express } from 'express';
import type pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenGate, passwordLogin, type TokenGate } from '../../lib/index.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import { dropSchema, freshSchema, testPool } from '../support/postgres.js';

const SECRET = 'a session secret of at least thirty-two bytes';
const login = passwordLogin({
  verify: async (user, password) => (password === `${user}-pw` ? { name: user, slug: user } : null),
});
const REDIRECT = 'http://127.0.0.1:41234/';
const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

/**
 * Two instances on one PostgreSQL schema, as behind a load balancer: the browser consents on
 * one, git redeems the code and refreshes on the other; a reuse on either ends the family.
 */
describe('gate.oauth across a fleet (PostgreSQL)', () => {
  let pool: pg.Pool;
  let schema: string;
  const gates: TokenGate[] = [];
  const apps: Express[] = [];

  beforeAll(async () => {
    pool = testPool();
    schema = freshSchema('oauth');
    for (let i = 0; i < 2; i++) {
      const gate = createTokenGate({ store: new PostgresTokenStore({ pool, schema }) });
      const app = express();
      app.use('/tokens', gate.pages({ login, session: { secret: SECRET, secure: false } }));
      app.use('/oauth', gate.oauth());
      gates.push(gate);
      apps.push(app);
    }
  });

  afterAll(async () => {
    for (const gate of gates) await gate.close();
    await dropSchema(pool, schema);
    await pool.end();
  });

  it('consents on one instance, redeems and rotates on the other', async () => {
    const [a, b] = apps as [Express, Express];
    const browser = request.agent(a);
    const form = await browser.get('/tokens/login');
    await browser
      .post('/tokens/login')
      .type('form')
      .send({ _csrf: csrfOf(form.text), username: 'alice', password: 'alice-pw' });
    // Consent on instance a: a code (and its verifier) to redeem on instance b.
    const consent = async () => {
      const verifier = randomBytes(32).toString('base64');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const page = await browser.get(
        `/tokens/oauth/authorize?${new URLSearchParams({ client_id: 'git', redirect_uri: REDIRECT, response_type: 'code', state: 'st', code_challenge: challenge, code_challenge_method: 'S256' })}`,
      );
      const allowed = await browser
        .post('/tokens/oauth/authorize')
        .type('form')
        .send({
          _csrf: csrfOf(page.text),
          client_id: 'git',
          redirect_uri: REDIRECT,
          state: 'st',
          code_challenge: challenge,
          code_challenge_method: 'S256',
          scope: '',
          grantScope: 'read',
          lifetime: '28800000',
          decision: 'allow',
        });
      const code = new URL(allowed.headers['location'] as string).searchParams.get('code')!;
      return () =>
        request(b)
          .post('/oauth/token')
          .auth('git', '')
          .type('form')
          .send({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
    };
    // One code redeemed twice at once: one winner. (The loser is a replay, which may revoke what
    // the winner got, as RFC 6749 asks, so the rest of the test signs in again.)
    const raced = await consent();
    const both = await Promise.all([raced(), raced()]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 400]);
    const redeem = await consent();
    const signedIn = await redeem();
    expect(signedIn.status).toBe(200);
    const issued = signedIn.body;
    expect((await gates[0]!.tokens.verify(issued.access_token))?.origin).toMatchObject({
      via: 'oauth',
      client: 'git',
    });

    const refresh = (app: Express, token: string) =>
      request(app)
        .post('/oauth/token')
        .auth('git', '')
        .type('form')
        .send({ grant_type: 'refresh_token', refresh_token: token });
    const rotated = await refresh(a, issued.refresh_token);
    expect(rotated.status).toBe(200);
    expect((await refresh(b, issued.refresh_token)).body.error).toBe('invalid_grant'); // reuse, elsewhere
    expect((await refresh(a, rotated.body.refresh_token)).body.error).toBe('invalid_grant'); // the family is gone
    expect(await gates[1]!.tokens.verify(rotated.body.access_token)).toBeNull();
  });
});
