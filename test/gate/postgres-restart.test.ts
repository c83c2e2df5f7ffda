import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';
import { testPool } from '../support/postgres.js';
import { type PostgresServer, startPostgresServer } from '../support/postgres-server.js';

interface Answer {
  at: number;
  token: string;
  status: number;
}

describe('the gate on PostgreSQL restarted under load', () => {
  let server: PostgresServer;
  let pools: pg.Pool[];
  let gate: TokenGate;
  let admin: TokenGate;
  let http: Server;
  let url: string;

  beforeAll(async () => {
    server = await startPostgresServer();
    // A stopped server refuses connections at once: the gate answers 503. The timeouts only
    // bound a server that hangs (generous, for a busy CI machine).
    pools = [0, 1].map(() => testPool(server.url, { connectionTimeoutMillis: 2_000, query_timeout: 2_000 }));
    const store = new PostgresTokenStore({ pool: pools[0]! });
    await store.ensureSchema();
    // The default verified-token cache is on: the test shows it is never trusted while the feed is down.
    gate = createTokenGate({ store, throttle: false });
    // Another proxy of the fleet, on its own pool: it revokes tokens.
    admin = createTokenGate({ store: new PostgresTokenStore({ pool: pools[1]! }), throttle: false });
    http = createServer(echoApp(EXPRESS_VERSIONS[1]![1], gate.protect()));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/rest/api/1.0/projects`;
  }, 60_000);

  afterAll(async () => {
    http?.closeAllConnections();
    await new Promise((resolve) => http?.close(resolve));
    await gate?.close();
    await admin?.close();
    await Promise.all((pools ?? []).map((pool) => pool.end()));
    await server?.remove();
  });

  it('answers 503 while it is down, never 200 for a revoked token, and recovers by itself', async () => {
    const live = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        gate.tokens.create({ user: `live${i}`, name: 'ci', scope: 'read' }),
      ),
    );
    const revoked = await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        gate.tokens.create({ user: `gone${i}`, name: 'ci', scope: 'read' }),
      ),
    );
    for (const { info } of revoked) await admin.tokens.revoke(info.id);
    const revokedTokens = new Set(revoked.map((r) => r.token));
    const tokens = [...live, ...revoked].map((t) => t.token);

    const answers: Answer[] = [];
    let loading = true;
    const load = async (worker: number) => {
      for (let i = worker; loading; i++) {
        const token = tokens[i % tokens.length]!;
        const status = await fetch(url, { headers: { authorization: `Bearer ${token}` } }).then(
          (res) => res.arrayBuffer().then(() => res.status),
          () => 0,
        );
        answers.push({ at: Date.now(), token, status });
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => load(w));
    const between = (from: number, to: number) => answers.filter((a) => a.at >= from && a.at < to);

    await sleep(500);
    const stopping = Date.now();
    await server.stop(); // fast shutdown: every connection is cut, as in a restart
    const stopped = Date.now();
    await sleep(2_500);
    const starting = Date.now();
    await server.start();
    const started = Date.now();
    let recovered = 0;
    const firstToken = live[0]!.token;
    while (Date.now() - started < 15_000) {
      const recent = answers.filter((a) => a.at > started && a.token === firstToken).slice(-3);
      if (recent.length === 3 && recent.every((a) => a.status === 200)) {
        recovered = recent[0]!.at;
        break;
      }
      await sleep(20);
    }
    expect(recovered).toBeGreaterThan(0);

    // Back up: a revocation made by the other proxy is refused here within a second.
    const victim = live[1]!;
    await admin.tokens.revoke(victim.info.id);
    const revokedAt = Date.now();
    revokedTokens.add(victim.token);
    await sleep(1_500);
    loading = false;
    await Promise.all(workers);

    const beforeStop = between(0, stopping);
    expect(beforeStop.filter((a) => !revokedTokens.has(a.token)).every((a) => a.status === 200)).toBe(true);
    // Down (once the listener's retries have cleared what was cached as it went): 503 for every token.
    const down = between(stopped + 1_200, starting);
    expect(down.length).toBeGreaterThan(5);
    expect(new Set(down.map((a) => a.status))).toEqual(new Set([503]));
    // Never a 200 for a token revoked before the restart, nor for the victim a second after its revocation.
    for (const answer of answers) {
      if (revokedTokens.has(answer.token) && answer.token !== victim.token)
        expect(answer.status).not.toBe(200);
    }
    const victimLate = answers.filter((a) => a.token === victim.token && a.at > revokedAt + 1_000);
    expect(victimLate.length).toBeGreaterThan(0);
    expect(victimLate.every((a) => a.status === 401)).toBe(true);
    // Every live token answers 200 again after the restart.
    const after = between(recovered, revokedAt).filter((a) => !revokedTokens.has(a.token));
    expect(new Set(after.map((a) => a.status))).toEqual(new Set([200]));
    const cachedWhileStopping = between(stopping, stopped + 1_200).filter((a) => a.status === 200).length;
    console.log(
      `PostgreSQL restart: ${answers.length} requests; ${down.length} answered 503 while down ` +
        `(${cachedWhileStopping} live-token 200s while it was shutting down); ` +
        `200 again ${recovered - started} ms after the server was back`,
    );
  }, 60_000);
});
