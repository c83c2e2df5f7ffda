import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoInstructions, type RunningProxy, startProxy } from '../../examples/bitbucket-proxy.js';
import type { AccessTokenRegistry } from '../../examples/demo-access-tokens.js';

const run = promisify(execFile);

/**
 * The example proxy in access-token mode (`BITBUCKET_UPSTREAM_MODE=access-token`) in front of
 * the demo Bitbucket, which knows nothing of `X-Forwarded-User` and takes only its own access
 * tokens: driven by the real git and curl command lines.
 */
describe('the example proxy in access-token mode, with git and curl', () => {
  let proxy: RunningProxy;
  let bitbucket: AccessTokenRegistry;
  let dir: string;
  let host: string;
  const env = () => ({
    ...process.env,
    HOME: dir,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    LC_ALL: 'C',
  });
  const sh = (command: string) => run('bash', ['-c', command], { cwd: dir, env: env(), maxBuffer: 1 << 24 });
  const git = (...args: string[]) => run('git', args, { cwd: dir, env: env(), maxBuffer: 1 << 24 });
  const commit = (repo: string, message: string) =>
    git(
      '-C',
      repo,
      '-c',
      'user.name=x',
      '-c',
      'user.email=x@example.com',
      'commit',
      '--allow-empty',
      '-q',
      '-m',
      message,
    );
  const createToken = async (scope: 'read' | 'write') =>
    JSON.parse(
      (
        await sh(
          `curl -s -u demo:demo -H "Content-Type: application/json" -d '{"name":"e2e","scope":"${scope}"}' ${proxy.url}/tokens/api`,
        )
      ).stdout,
    ) as { token: string; id: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eat-e2e-at-'));
    proxy = await startProxy({
      PORT: '0',
      BITBUCKET_URL: '',
      REDIS_URL: '',
      TOKEN_STORE: `sqlite:${join(dir, 'tokens.db')}`,
      BITBUCKET_UPSTREAM_MODE: 'access-token',
    });
    bitbucket = proxy.demo!.upstream.accessTokens!;
    host = proxy.url.replace('http://', '');
  });

  afterAll(async () => {
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('mints a Bitbucket token for each demo token, and runs every command it prints', async () => {
    expect(bitbucket.of('demo').map((t) => t.permissions)).toEqual([
      ['REPO_READ', 'PROJECT_READ'],
      ['REPO_WRITE', 'PROJECT_WRITE'],
    ]);
    const printed = demoInstructions(proxy);
    expect(printed).toContain('each token backed by a Bitbucket access token');
    const commands = printed
      .split('\n')
      .filter((line) => line.startsWith('  $ '))
      .map((line) => line.slice(4));
    for (const command of commands) await sh(command);
    expect(proxy.demo!.upstream.pushes).toEqual(['demo']);
  });

  it('clones with a read token, pushes with a write token, and refuses a push with the read token', async () => {
    const { readToken, writeToken } = proxy.demo!;
    await git('clone', '-q', `http://demo:${readToken}@${host}/scm/demo/repo.git`, 'read');
    expect(readFileSync(join(dir, 'read', 'README.md'), 'utf8')).toContain('Demo repository');
    await commit('read', 'refused');
    await expect(git('-C', 'read', 'push', 'origin', 'HEAD:main')).rejects.toMatchObject({
      stderr: expect.stringContaining('remote: This API token is read-only'),
    });
    await git('clone', '-q', `http://x-token-auth:${writeToken}@${host}/scm/demo/repo.git`, 'write');
    await commit('write', 'accepted');
    await git('-C', 'write', 'push', '-q', 'origin', 'HEAD:main');
    expect(proxy.demo!.upstream.pushes.at(-1)).toBe('demo');
  });

  it('revokes: our token is refused at once, and its Bitbucket token is deleted', async () => {
    const created = await createToken('read');
    const backing = bitbucket.of('demo').find((t) => t.name === `express-api-tokens ${created.id}`);
    expect(backing).toBeDefined();
    await git('clone', '-q', `http://demo:${created.token}@${host}/scm/demo/repo.git`, 'before-revoke');
    const revoked = await sh(
      `curl -s -o /dev/null -w '%{http_code}' -u demo:demo -X DELETE ${proxy.url}/tokens/api/${created.id}`,
    );
    expect(revoked.stdout).toBe('204');
    expect(bitbucket.tokens.has(backing!.id)).toBe(false);
    await expect(
      git('clone', `http://demo:${created.token}@${host}/scm/demo/repo.git`, 'after-revoke'),
    ).rejects.toMatchObject({
      stderr: expect.stringContaining('invalid, expired or revoked'),
    });
  });

  it('tells git and curl clearly when the Bitbucket token was revoked in Bitbucket', async () => {
    const created = await createToken('read');
    const backing = bitbucket.of('demo').find((t) => t.name === `express-api-tokens ${created.id}`)!;
    bitbucket.revoke(backing.id);
    const clone = git('clone', `http://demo:${created.token}@${host}/scm/demo/repo.git`, 'bitbucket-revoked');
    await expect(clone).rejects.toMatchObject({
      stderr: expect.stringContaining(
        'remote: Bitbucket no longer accepts the access token behind this API token',
      ),
    });
    const curl = await sh(
      `curl -s -H "Authorization: Bearer ${created.token}" ${proxy.url}/rest/api/1.0/projects`,
    );
    expect(JSON.parse(curl.stdout).errors[0]).toMatchObject({ code: 'UPSTREAM_TOKEN_REVOKED' });
  });
});
