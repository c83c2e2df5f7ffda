import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { bitbucketLogin } from '../../lib/bitbucket/login.js';
import type { AuditEvent, AuthDeniedEvent } from '../../lib/events.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { basic } from '../support/apps.js';
import { startBitbucketStandIn } from '../support/bitbucket-stand-in.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function managementApp() {
  const bitbucket = await startBitbucketStandIn({
    adminToken: 'admin-token',
    groups: { alice: ['devs'] },
    passwords: { alice: 'alice-password', bob: 'bob-password' },
  });
  cleanups.push(() => bitbucket.close());
  const events: AuditEvent[] = [];
  const onEvent = (event: AuditEvent) => events.push(event);
  const gate = createTokenGate({
    groups: { alice: ['devs'] },
    permissions: { createTokens: ['devs'] },
    onEvent,
  });
  cleanups.push(() => gate.close());
  const app = express();
  app.use(
    '/tokens',
    bitbucketLogin({ baseUrl: bitbucket.baseUrl, throttle: { maxFailuresPerUser: 3 }, onEvent }),
    gate.router(),
  );
  const denied = () => events.filter((e): e is AuthDeniedEvent => e.type === 'auth.denied');
  return { app, gate, events, denied };
}

describe('management API audit events', () => {
  it('reports every failed login, without the password', async () => {
    const { app, denied, events } = await managementApp();
    expect((await request(app).get('/tokens')).status).toBe(401);
    for (let i = 0; i < 3; i++)
      expect((await request(app).get('/tokens').set('authorization', basic('alice', 'guess'))).status).toBe(
        401,
      );
    expect((await request(app).get('/tokens').set('authorization', basic('alice', 'guess'))).status).toBe(
      429,
    );
    expect(denied().map((e) => [e.code, e.user])).toEqual([
      ['CREDENTIALS_MISSING', undefined],
      ['PASSWORD_INVALID', 'alice'],
      ['PASSWORD_INVALID', 'alice'],
      ['PASSWORD_INVALID', 'alice'],
      ['TOO_MANY_ATTEMPTS', 'alice'],
    ]);
    expect(denied()[1]).toMatchObject({ method: 'GET', path: '/tokens', clientIp: expect.any(String) });
    expect(JSON.stringify(events)).not.toContain('guess');
  });

  it('reports a token that tries to mint a token (TOKEN_CANNOT_MINT) with its id and owner', async () => {
    const { app, gate, denied } = await managementApp();
    const { token, info } = await gate.tokens.create({ user: 'alice', name: 'ci', scope: 'write' });
    const res = await request(app)
      .post('/tokens')
      .set('authorization', `Bearer ${token}`)
      .send({ name: 'more', scope: 'write' });
    expect(res.body.errors[0].code).toBe('TOKEN_CANNOT_MINT');
    expect(denied()).toEqual([
      expect.objectContaining({ code: 'TOKEN_CANNOT_MINT', tokenId: info.id, user: 'alice', method: 'POST' }),
    ]);
    expect(JSON.stringify(denied())).not.toContain(token);
  });

  it('reports every refusal of a logged-in caller, with the caller', async () => {
    const { app, denied } = await managementApp();
    const as = (user: string, password: string) => ({ authorization: basic(user, password) });
    const bob = as('bob', 'bob-password');
    expect((await request(app).post('/tokens').set(bob).send({ name: 'x', scope: 'read' })).status).toBe(403);
    const alice = as('alice', 'alice-password');
    expect((await request(app).post('/tokens').set(alice).send({ name: '', scope: 'read' })).status).toBe(
      400,
    );
    expect(
      (await request(app).post('/tokens').set(alice).set('content-type', 'application/json').send('{oops'))
        .status,
    ).toBe(400);
    expect((await request(app).get('/tokens/nope1234567').set(alice)).status).toBe(404);
    expect((await request(app).get('/tokens/a/b/c').set(alice)).status).toBe(404);
    expect((await request(app).get('/tokens?all=true').set(alice)).status).toBe(403);
    expect(denied().map((e) => [e.code, e.user, e.method])).toEqual([
      ['PERMISSION_DENIED', 'bob', 'POST'],
      ['VALIDATION_FAILED', 'alice', 'POST'],
      ['VALIDATION_FAILED', 'alice', 'POST'],
      ['TOKEN_NOT_FOUND', 'alice', 'GET'],
      ['NOT_FOUND', 'alice', 'GET'],
      ['PERMISSION_DENIED', 'alice', 'GET'],
    ]);
  });
});
