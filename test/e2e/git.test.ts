import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

/**
 * The example proxy in its own process, driven by the real git and curl command lines, exactly
 * as a newcomer would after `npm start`.
 */
describe('the example proxy with git and curl', () => {
  let proxy: ChildProcess;
  let output = '';
  let dir: string;
  let url: string;
  let readToken: string;
  let writeToken: string;
  const env = () => ({
    ...process.env,
    HOME: dir,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    LC_ALL: 'C',
  });
  const sh = (command: string, cwd = dir) =>
    run('bash', ['-c', command], { cwd, env: env(), maxBuffer: 1 << 24 });
  const git = (args: string[], cwd = dir) => run('git', args, { cwd, env: env(), maxBuffer: 1 << 24 });
  const peakRssKb = () =>
    Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${proxy.pid}/status`, 'utf8'))![1]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eat-e2e-'));
    proxy = spawn(process.execPath, ['--import', 'tsx', 'examples/bitbucket-proxy.ts'], {
      env: {
        ...process.env,
        PORT: '0',
        REDIS_URL: '',
        TOKEN_STORE: `sqlite:${join(dir, 'tokens.db')}`,
        BITBUCKET_URL: '',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    proxy.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const started = Date.now();
    while (!output.includes('Press Ctrl+C') && Date.now() - started < 60_000)
      await new Promise((r) => setTimeout(r, 50));
    const printed = /proxy on (http:\/\/\S+)/.exec(output);
    if (printed === null)
      throw new Error(`The example proxy did not start within 60 s; it printed:\n${output}`);
    url = printed[1]!;
    readToken = /Read token for "demo":\s+(\S+)/.exec(output)![1]!;
    writeToken = /Write token for "demo":\s+(\S+)/.exec(output)![1]!;
  }, 90_000);

  afterAll(async () => {
    if (proxy && proxy.exitCode === null) {
      proxy.kill('SIGTERM');
      await new Promise((resolve) => proxy.once('exit', resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs every command it prints, as printed', async () => {
    const commands = output
      .split('\n')
      .filter((line) => line.startsWith('  $ '))
      .map((line) => line.slice(4));
    expect(commands.length).toBeGreaterThanOrEqual(7);
    // One line for the token pages, with the credentials that log in there.
    const pages = output.match(
      /^Token page: (http:\/\/127\.0\.0\.1:\d+\/tokens\/) \(log in as demo \/ demo\)$/gm,
    );
    expect(pages).toHaveLength(1);
    const login = await fetch(`${url}/tokens/login`);
    expect(login.status).toBe(200);
    expect(await login.text()).toContain('Bitbucket username');
    for (const command of commands) await sh(command);
    const pushes = await sh(`curl -s -H "Authorization: Bearer ${readToken}" ${url}/rest/demo/pushes`);
    expect(JSON.parse(pushes.stdout).pushes).toEqual(['demo']);
  });

  it('clones with a read token sent as Bearer through http.extraHeader', async () => {
    await git([
      '-c',
      `http.extraHeader=Authorization: Bearer ${readToken}`,
      'clone',
      `${url}/scm/demo/repo.git`,
      'bearer-clone',
    ]);
    expect(readFileSync(join(dir, 'bearer-clone', 'README.md'), 'utf8')).toContain('Demo repository');
  });

  it('refuses a push with a read token, and git shows why', async () => {
    const host = url.replace('http://', '');
    await git(['clone', `http://demo:${readToken}@${host}/scm/demo/repo.git`, 'read-only']);
    await git([
      '-C',
      'read-only',
      '-c',
      'user.name=x',
      '-c',
      'user.email=x@example.com',
      'commit',
      '--allow-empty',
      '-m',
      'nope',
    ]);
    const push = git(['-C', 'read-only', 'push', 'origin', 'HEAD:main']);
    await expect(push).rejects.toMatchObject({
      stderr: expect.stringContaining('remote: This API token is read-only'),
    });
  });

  it('refuses a clone with a password, telling the user to use a token', async () => {
    const host = url.replace('http://', '');
    const clone = git(['clone', `http://demo:demo@${host}/scm/demo/repo.git`, 'password-clone']);
    await expect(clone).rejects.toMatchObject({ stderr: expect.stringContaining('Create an API token') });
  });

  it('refuses a token once it is revoked through the management API', async () => {
    const created = JSON.parse(
      (
        await sh(
          `curl -s -u demo:demo -H "Content-Type: application/json" -d '{"name":"short-lived","scope":"read"}' ${url}/tokens/api`,
        )
      ).stdout,
    );
    const host = url.replace('http://', '');
    await git(['clone', `http://demo:${created.token}@${host}/scm/demo/repo.git`, 'before-revoke']);
    const revoked = await sh(
      `curl -s -o /dev/null -w '%{http_code}' -u demo:demo -X DELETE ${url}/tokens/api/${created.id}`,
    );
    expect(revoked.stdout).toBe('204');
    const clone = git(['clone', `http://demo:${created.token}@${host}/scm/demo/repo.git`, 'after-revoke']);
    await expect(clone).rejects.toMatchObject({
      stderr: expect.stringContaining('invalid, expired or revoked'),
    });
  });

  it('limits a repository-restricted token to its repository, and git shows why elsewhere', async () => {
    const create = async (body: Record<string, unknown>) =>
      JSON.parse(
        (
          await sh(
            `curl -s -u demo:demo -H "Content-Type: application/json" -d '${JSON.stringify(body)}' ${url}/tokens/api`,
          )
        ).stdout,
      ) as { token: string; resources: string[] };
    const host = url.replace('http://', '');
    const here = await create({ name: 'repo only', scope: 'write', resources: ['DEMO/repo'] });
    expect(here.resources).toEqual(['DEMO/repo']);
    await git(['clone', `http://demo:${here.token}@${host}/scm/demo/repo.git`, 'restricted']);
    await git([
      '-C',
      'restricted',
      '-c',
      'user.name=R',
      '-c',
      'user.email=r@example.com',
      'commit',
      '--allow-empty',
      '-m',
      'restricted push',
    ]);
    await git(['-C', 'restricted', 'push', 'origin', 'HEAD:main']);
    const elsewhere = await create({ name: 'other repo', scope: 'write', resources: ['DEMO/other', 'OPS'] });
    const clone = git(['clone', `http://demo:${elsewhere.token}@${host}/scm/demo/repo.git`, 'not-here']);
    await expect(clone).rejects.toMatchObject({
      stderr: expect.stringContaining('may not access this project or repository'),
    });
  });

  it('answers curl on /rest for each kind of credential', async () => {
    const status = async (args: string) =>
      (await sh(`curl -s -o /dev/null -w '%{http_code}' ${args} ${url}/rest/api/1.0/projects`)).stdout;
    expect(await status(`-H "Authorization: Bearer ${readToken}"`)).toBe('200');
    expect(await status(`-u demo:${readToken}`)).toBe('200');
    expect(await status(`-u x-token-auth:${writeToken}`)).toBe('200');
    expect(await status('-u demo:demo')).toBe('401');
    expect(await status('-H "Authorization: Bearer bbt_garbage"')).toBe('401');
    expect(await status('-H "Authorization: Basic %%%"')).toBe('400');
    expect(await status(`-X POST -H "Authorization: Bearer ${readToken}"`)).toBe('403');
    const echoed = JSON.parse(
      (await sh(`curl -s -u demo:${writeToken} -H "X-Forwarded-User: admin" ${url}/rest/api/1.0/projects`))
        .stdout,
    );
    expect(echoed).toMatchObject({ user: 'demo', receivedAuthorization: false });
  });

  it('streams a 50 MB push through the proxy with flat memory', async () => {
    const host = url.replace('http://', '');
    await git(['clone', `http://demo:${writeToken}@${host}/scm/demo/repo.git`, 'big']);
    const commit = async (megabytes: number) => {
      writeFileSync(join(dir, 'big', `blob-${megabytes}.bin`), randomBytes(megabytes * 1024 * 1024));
      await git(['-C', 'big', 'add', '.']);
      await git([
        '-C',
        'big',
        '-c',
        'user.name=x',
        '-c',
        'user.email=x@example.com',
        'commit',
        '-q',
        '-m',
        `${megabytes} MB`,
      ]);
    };
    // A first push brings the proxy to its working size (Node 22 and later start smaller than
    // Node 20 and grow into it), so the growth measured below is what the big push adds.
    await commit(8);
    await git(['-C', 'big', '-c', 'core.compression=0', 'push', 'origin', 'HEAD:main']);
    await commit(50);
    const before = peakRssKb();
    const started = Date.now();
    await git(['-C', 'big', '-c', 'core.compression=0', 'push', 'origin', 'HEAD:main']);
    const growthMb = (peakRssKb() - before) / 1024;
    console.log(
      `50 MB push: ${Date.now() - started} ms, proxy peak RSS ${before >> 10} MB before, grew by ${growthMb.toFixed(1)} MB`,
    );
    expect(growthMb).toBeLessThan(32);
  }, 120_000);
});
