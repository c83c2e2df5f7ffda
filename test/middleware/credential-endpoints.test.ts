import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenGate, type TokenGateOptions } from '../../lib/gate/create-token-gate.js';
import { basic, EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

describe.each(EXPRESS_VERSIONS)('gate.protect() and credential endpoints on %s', (_name, makeApp) => {
  const setup = async (options: TokenGateOptions = {}) => {
    const events: AuditEvent[] = [];
    const gate = createTokenGate({ onEvent: (e) => events.push(e), ...options });
    cleanups.push(() => gate.close());
    const app = echoApp(makeApp, gate.protect());
    const { token, info } = await gate.tokens.create({ user: 'alice', name: 'ci', scope: 'write' });
    return { app, events, token, info };
  };

  it.each([
    ['POST', '/rest/ssh/1.0/keys'],
    ['POST', '/rest/gpg/latest/keys'],
    ['PUT', '/rest/access-tokens/latest/users/alice'],
    ['POST', '/rest/keys/1.0/projects/PROJ/repos/repo/ssh'],
    ['PUT', '/rest/api/1.0/users/credentials'],
    ['POST', '/REST/%61ccess-tokens/1.0/users/alice'],
    ['POST', '/rest/api/1.0/../../ssh/1.0/keys'],
    ['POST', '/rest//ssh;v=1/latest/keys'],
  ])(
    'refuses a token %s %s with 403 CREDENTIAL_ENDPOINT_REFUSED, and says so in the audit log',
    async (method, path) => {
      const { app, events, token, info } = await setup();
      const res = await request(app)
        [method.toLowerCase() as 'post'](path)
        .set('Authorization', `Bearer ${token}`)
        .send({ text: 'ssh-ed25519 AAAA… attacker' });
      expect(res.status).toBe(403);
      expect(res.body.errors[0].code).toBe('CREDENTIAL_ENDPOINT_REFUSED');
      expect(events.at(-1)).toMatchObject({
        type: 'auth.denied',
        code: 'CREDENTIAL_ENDPOINT_REFUSED',
        tokenId: info.id,
      });
    },
  );

  it('lets the same token do everything else, and passwords reach Bitbucket as before', async () => {
    const { app, token } = await setup();
    const ok = await request(app)
      .post('/rest/api/1.0/projects/PROJ/repos/repo/pull-requests')
      .set('Authorization', basic('alice', token))
      .send({ title: 'x' });
    expect(ok.status).toBe(200);
    const password = await request(app)
      .post('/rest/ssh/1.0/keys')
      .set('Authorization', basic('alice', 'hunter2'));
    expect(password.status).toBe(200); // Bitbucket judges passwords itself
  });

  it('lets tokens through with allowCredentialEndpoints: true', async () => {
    const { app, token } = await setup({ allowCredentialEndpoints: true });
    const res = await request(app)
      .post('/rest/ssh/1.0/keys')
      .set('Authorization', `Bearer ${token}`)
      .send({});
    expect(res.status).toBe(200);
  });

  it('checks the option at startup', () => {
    expect(() => createTokenGate({ allowCredentialEndpoints: 'yes' as unknown as boolean })).toThrow(
      /allowCredentialEndpoints/,
    );
  });
});
