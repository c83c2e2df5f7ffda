import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FederationRule } from '../../lib/federation/trust-rules.js';
import { type CiIssuer, startCiIssuer } from '../support/ci-issuer.js';

const run = promisify(execFile);
const AUDIENCE = 'https://git.example.com';

/**
 * What docs/ci.md tells a CI job to do, run as written with the real curl, jq and git against
 * the example proxy (its own process, rules from `FEDERATION_RULES`, tokens in SQLite): one
 * curl exchanges the job's identity token at /oauth/token, git clones and pushes with the API
 * token it got.
 */
describe('a CI job clones and pushes with an exchanged token, through the example proxy', () => {
  let ci: CiIssuer;
  let proxy: ChildProcess;
  let output = '';
  let url: string;
  let dir: string;

  beforeAll(async () => {
    ci = await startCiIssuer();
    dir = mkdtempSync(join(tmpdir(), 'eat-federation-'));
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
    writeFileSync(join(dir, 'rules.json'), JSON.stringify(rules));
    proxy = spawn(process.execPath, ['--import', 'tsx', 'examples/bitbucket-proxy.ts'], {
      env: {
        ...process.env,
        PORT: '0',
        REDIS_URL: '',
        BITBUCKET_URL: '',
        TOKEN_STORE: `sqlite:${join(dir, 'tokens.db')}`,
        FEDERATION_RULES: join(dir, 'rules.json'),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    proxy.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const started = Date.now();
    while (!output.includes('Press Ctrl+C') && proxy.exitCode === null && Date.now() - started < 60_000)
      await sleep(50);
    const printed = /proxy on (http:\/\/\S+)/.exec(output);
    if (printed === null)
      throw new Error(`The example proxy did not start within 60 s; it printed:\n${output}`);
    url = printed[1]!;
  }, 90_000);
  afterAll(async () => {
    if (proxy && proxy.exitCode === null) {
      proxy.kill('SIGTERM');
      await new Promise((resolve) => proxy.once('exit', resolve));
    }
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
cd ..
git -c "http.extraHeader=Authorization: Bearer $API_TOKEN" clone -q "$PROXY/scm/demo/repo.git" check
git -C check log -1 --format=%s > pushed
echo "$API_TOKEN" > api-token`,
      await ci.sign({ ref: 'main' }),
    );
    expect(readFileSync(join(dir, 'work', 'README.md'), 'utf8')).toContain('Demo repository');
    expect(readFileSync(join(dir, 'pushed'), 'utf8').trim()).toBe('from CI');
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
    // The audit log names the exchange; the token's expiry is ttlSeconds away.
    const exchanged = output
      .split('\n')
      .filter((line) => line.includes('"token.exchanged"'))
      .map((line) => JSON.parse(line));
    expect(exchanged).toEqual([
      expect.objectContaining({
        issuer: ci.issuer,
        rule: 'deploy',
        user: 'demo',
        subject: expect.any(String),
      }),
    ]);
    expect(output).not.toContain(apiToken);
    await sleep(Date.parse(exchanged[0].expiresAt) - Date.now() + 200);
    // git is answered 401 and would prompt for credentials (prompts are off in a CI job).
    await expect(lsRemote()).rejects.toMatchObject({
      stderr: expect.stringContaining('could not read Username'),
    });
    const refs = await fetch(`${url}/scm/demo/repo.git/info/refs?service=git-upload-pack`, {
      headers: { authorization: `Bearer ${apiToken}` },
    });
    expect(refs.status).toBe(401);
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
