import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoUpstream, startDemoUpstream } from '../../examples/demo-upstream.js';
import { createTokenExchangeGrant, TOKEN_EXCHANGE_GRANT } from '../../lib/federation/token-exchange.js';
import { compileTrustRules, type FederationRule } from '../../lib/federation/trust-rules.js';
import { forwardTo } from '../../lib/forward/index.js';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { type CiIssuer, startCiIssuer } from '../support/ci-issuer.js';
import { tokenEndpointApp } from '../support/token-endpoint.js';

const run = promisify(execFile);
const AUDIENCE = 'https://git.example.com';

/**
 * What docs/ci.md tells a CI job to do, run as written with the real curl, jq and git: one
 * curl exchanges the job's identity token, git clones and pushes with the API token it got.
 */
describe('a CI job clones and pushes with an exchanged token', () => {
  let ci: CiIssuer;
  let demo: DemoUpstream;
  let gate: TokenGate;
  let server: Server;
  let url: string;
  let dir: string;

  beforeAll(async () => {
    ci = await startCiIssuer();
    demo = await startDemoUpstream();
    dir = mkdtempSync(join(tmpdir(), 'eat-federation-'));
    const store = new MemoryTokenStore();
    const rules: FederationRule[] = [
      {
        name: 'deploy',
        issuer: ci.issuer,
        audience: AUDIENCE,
        claims: { project_path: 'ops/deploy', ref: 'main' },
        user: 'demo',
        scope: 'write',
        resources: ['DEMO/repo'],
        ttlSeconds: 10,
        allowInsecureLoopback: true,
      },
      {
        name: 'elsewhere',
        issuer: ci.issuer,
        audience: AUDIENCE,
        claims: { project_path: 'ops/other' },
        user: 'demo',
        scope: 'read',
        resources: ['OTHER/*'],
        allowInsecureLoopback: true,
      },
    ];
    gate = createTokenGate({ store, federation: rules });
    const grant = createTokenExchangeGrant({
      tokens: gate.tokens,
      store,
      rules: compileTrustRules(rules),
      emit: () => {},
    });
    const app = express();
    app.use(tokenEndpointApp({ [TOKEN_EXCHANGE_GRANT]: grant }));
    app.use(['/rest', '/scm'], gate.protect(), forwardTo(demo.url));
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await gate?.close();
    await demo?.close();
    await ci?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a job script with the job token in CI_JOB_JWT, as a CI runner would. */
  const job = (script: string, jobToken: string) =>
    run('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: {
        PATH: process.env['PATH'],
        HOME: dir,
        GIT_TERMINAL_PROMPT: '0',
        GIT_CONFIG_NOSYSTEM: '1',
        LC_ALL: 'C',
        PROXY: url,
        CI_JOB_JWT: jobToken,
      },
    });
  const exchangeScript = `API_TOKEN=$(curl -sSf "$PROXY/oauth/token" \\
  -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\
  -d subject_token_type=urn:ietf:params:oauth:token-type:jwt \\
  --data-urlencode "subject_token=$CI_JOB_JWT" | jq -r .access_token)`;

  it('clones and pushes, and the token stops working after ttlSeconds', async () => {
    await job(
      `${exchangeScript}
git -c "http.extraHeader=Authorization: Bearer $API_TOKEN" clone "$PROXY/scm/demo/repo.git" work
cd work
git -c user.name=CI -c user.email=ci@example.com commit -q --allow-empty -m "from CI"
git -c "http.extraHeader=Authorization: Bearer $API_TOKEN" push -q origin HEAD:main
echo "$API_TOKEN" > ../api-token`,
      await ci.sign({ ref: 'main' }),
    );
    expect(readFileSync(join(dir, 'work', 'README.md'), 'utf8')).toContain('Demo repository');
    expect(demo.pushes).toEqual(['demo']);
    // The token is not left behind in the clone's configuration.
    expect(readFileSync(join(dir, 'work', '.git', 'config'), 'utf8')).not.toContain('bbt_');
    const apiToken = readFileSync(join(dir, 'api-token'), 'utf8').trim();
    const lsRemote = () =>
      run(
        'git',
        ['-c', `http.extraHeader=Authorization: Bearer ${apiToken}`, 'ls-remote', `${url}/scm/demo/repo.git`],
        {
          env: { PATH: process.env['PATH'], HOME: dir, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' },
        },
      );
    expect((await lsRemote()).stdout).toMatch(/refs\/heads\/main/);
    const info = (await gate.tokens.list('demo')).find((t) => t.createdBy === 'federation')!;
    await sleep(Date.parse(info.expiresAt!) - Date.now() + 200);
    // git is answered 401 and would prompt for credentials (prompts are off in a CI job).
    await expect(lsRemote()).rejects.toMatchObject({
      stderr: expect.stringContaining('could not read Username'),
    });
    const refs = await fetch(`${url}/scm/demo/repo.git/info/refs?service=git-upload-pack`, {
      headers: { authorization: `Bearer ${apiToken}` },
    });
    expect(refs.status).toBe(401);
    // Gone from the owner's list once expired.
    expect((await gate.tokens.list('demo')).filter((t) => t.createdBy === 'federation')).toEqual([]);
  }, 40_000);

  it('gives a job only what its rule allows: another rule’s token cannot reach this repository', async () => {
    const failed = job(
      `${exchangeScript}
git -c "http.extraHeader=Authorization: Bearer $API_TOKEN" clone "$PROXY/scm/demo/repo.git" other`,
      await ci.sign({ project_path: 'ops/other' }),
    );
    await expect(failed).rejects.toMatchObject({ stderr: expect.stringMatching(/403|not allowed/i) });
  });

  it('fails the job at the curl when the job token is refused, and no git command runs', async () => {
    const refused = job(`${exchangeScript}\necho "should not run" > ran`, await ci.sign({ ref: 'feature' }));
    await expect(refused).rejects.toMatchObject({ stderr: expect.stringContaining('400') });
  });
});
