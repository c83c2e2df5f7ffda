import express from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuditEvent, createTokenGate, MemoryTokenStore, type TokenGate } from '../../lib/index.js';

/** The endpoint behind a trusted proxy (the test's own loopback), which names the client. */
function behindProxy(maxRequestsPerIp: number): { gate: TokenGate; app: express.Express } {
  const gate = createTokenGate({ store: new MemoryTokenStore(), trustedProxies: ['127.0.0.1', '::1'] });
  const app = express();
  app.post('/tokens/leaked', gate.revocationEndpoint({ maxRequestsPerIp }));
  return { gate, app };
}

describe('the revocation endpoint’s rate limit', () => {
  let gate: TokenGate | undefined;
  afterEach(async () => {
    await gate?.close();
  });

  const report = (app: express.Express, from: string) =>
    request(app).post('/tokens/leaked').set('X-Forwarded-For', from).send({ credentials: [] });

  it('counts an IPv6 client by its /64, so rotating addresses inside it does not reset the limit', async () => {
    const setUp = behindProxy(3);
    gate = setUp.gate;
    const statuses: number[] = [];
    for (let i = 1; i <= 6; i++)
      statuses.push((await report(setUp.app, `2001:db8:1:2::${i.toString(16)}`)).status);
    expect(statuses).toEqual([202, 202, 202, 429, 429, 429]);
    // Another subscriber (another /64) is not held back by the first one.
    expect((await report(setUp.app, '2001:db8:1:3::1')).status).toBe(202);
  });

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    gate = createTokenGate({ store: new MemoryTokenStore() });
    const app = express();
    app.post('/tokens/leaked', gate.revocationEndpoint({ maxRequestsPerIp: 2 }));
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i++) statuses.push((await report(app, `203.0.113.${i}`)).status);
    expect(statuses).toEqual([202, 202, 429, 429]);
  });

  it('writes no other token into the event from the finder’s url or source', async () => {
    const events: AuditEvent[] = [];
    gate = createTokenGate({ store: new MemoryTokenStore(), onEvent: (e) => events.push(e) });
    const app = express();
    app.post('/tokens/leaked', gate.revocationEndpoint());
    const reported = await gate.tokens.create({ user: 'ann', name: 'reported', scope: 'read' });
    const bystander = await gate.tokens.create({ user: 'bob', name: 'bystander', scope: 'read' });
    const res = await request(app)
      .post('/tokens/leaked')
      .send([
        {
          token: reported.token,
          url: `https://paste.example/raw?t=${bystander.token}`,
          source: `found beside ${bystander.token.toUpperCase()}`,
        },
      ]);
    expect(res.status).toBe(202);
    for (let i = 0; i < 100 && !events.some((e) => e.type === 'token.leaked'); i++)
      await new Promise((r) => setTimeout(r, 20));
    const leaked = events.find((e) => e.type === 'token.leaked');
    expect(leaked).toMatchObject({ tokenId: reported.info.id, url: 'https://paste.example/raw?t=bbt_…' });
    // Neither spelling of the bystander's secret part is anywhere in the event.
    expect(JSON.stringify(leaked).toLowerCase()).not.toContain(bystander.token.slice(4 + 11).toLowerCase());
    // Only reported tokens are revoked.
    expect(await gate.tokens.verify(bystander.token)).not.toBeNull();
  });
});
