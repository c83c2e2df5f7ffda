import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, SHOTS_DIR, seriousViolations } from '../support/browser.js';

const run = promisify(execFile);

/**
 * git signs in through the browser, end to end: the example proxy in its own process, the
 * Debian `git-credential-oauth` helper configured exactly as `npm start` prints, Chromium as
 * the person, curl as a device. No `open`/`xdg-open` on PATH, so the helper prints the URL.
 */
describe('git sign-in through the browser (git-credential-oauth, device flow)', () => {
  let proxy: ChildProcess;
  let output = '';
  let dir: string;
  let url: string;
  let browser: Browser;
  // Only git and the helper on PATH: no `open` that would start a desktop browser.
  const env = () => ({
    HOME: dir,
    PATH: join(dir, 'bin'),
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    LC_ALL: 'C',
  });
  const sh = (command: string) =>
    run('/bin/bash', ['-c', command], { cwd: dir, env: env(), maxBuffer: 1 << 24 });
  const curl = async (args: string[]) =>
    JSON.parse((await run('/usr/bin/curl', ['-s', ...args], { env: env() })).stdout) as Record<
      string,
      unknown
    >;

  /** Runs git; resolves with its exit code and stderr. `onUrl` gets the sign-in URL the helper prints. */
  function git(args: string[], onUrl?: (signIn: string) => Promise<void>) {
    return new Promise<{ code: number | null; stderr: string; asked: boolean }>((resolve) => {
      // Its own process group: stopping git must stop the helper it started too, which would
      // otherwise wait on its loopback port long after the test.
      const child = spawn('/usr/bin/git', args, { cwd: dir, env: env(), detached: true });
      const stop = () => {
        try {
          process.kill(-child.pid!, 'SIGTERM');
        } catch {
          // already gone
        }
      };
      let stderr = '';
      let asked = false;
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const found = /(http:\/\/\S+\/tokens\/oauth\/authorize\S+)/.exec(stderr);
        if (found !== null && !asked) {
          asked = true;
          if (onUrl === undefined) stop();
          else
            onUrl(found[1]!).catch((err: unknown) => {
              stderr += `\n[browser] ${String(err)}`;
              stop();
            });
        }
      });
      child.on('exit', (code) => resolve({ code, stderr, asked }));
    });
  }

  async function logIn(page: Page) {
    await page.getByLabel('Bitbucket username').fill('demo');
    await page.getByLabel('Password').fill('demo');
    await page.getByRole('button', { name: 'Log in' }).click();
  }

  /** The person: logs in, sees the consent page, allows. */
  async function consent(signIn: string) {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(signIn);
      await logIn(page);
      await page.getByRole('heading', { name: 'Sign in to Git?' }).waitFor();
      expect(await page.getByText('asks for an API token of demo').count()).toBe(1);
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: join(SHOTS_DIR, 'oauth-consent.png'), fullPage: true });
      await page.getByRole('button', { name: 'Allow' }).click();
      // The helper's own loopback server answers the redirect.
      await page.getByText('Success. You may close this page and return to Git.').waitFor();
    } finally {
      await context.close();
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eat-oauth-'));
    mkdirSync(join(dir, 'bin'));
    for (const tool of ['git', 'git-credential-oauth'])
      symlinkSync(`/usr/bin/${tool}`, join(dir, 'bin', tool));
    browser = await launchChromium();
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
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await sh('git credential-cache exit').catch(() => {});
    if (proxy && proxy.exitCode === null) {
      proxy.kill('SIGTERM');
      await new Promise((resolve) => proxy.once('exit', resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('clones after a browser sign-in configured as printed, reuses the token, and asks again once it is revoked', {
    timeout: 120_000,
  }, async () => {
    const lines = output.split('\n').filter((line) => line.startsWith('$ git config'));
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const line of lines) await sh(line.slice(2));

    const first = await git(['clone', `${url}/scm/demo/repo.git`, 'first'], consent);
    expect(first, first.stderr).toMatchObject({ code: 0, asked: true });
    expect(readFileSync(join(dir, 'first', 'README.md'), 'utf8')).toContain('Demo repository');

    // Within the token's lifetime the cached credential serves: no second sign-in.
    const second = await git(['clone', `${url}/scm/demo/repo.git`, 'second']);
    expect(second, second.stderr).toMatchObject({ code: 0, asked: false });

    // "My tokens" shows the token as signed in by git; revoking it there signs git out.
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('dialog', (dialog) => dialog.accept());
    await page.goto(`${url}/tokens/`);
    await logIn(page);
    await page.getByText('Signed in by git from 127.0.0.1').waitFor();
    await page.getByRole('button', { name: 'Revoke token Git sign-in' }).click();
    await page.getByText('The token was revoked.').waitFor();
    await context.close();

    // The cached token is refused (and dropped from the cache); the next fetch signs in again.
    const refused = await git(['-C', 'first', 'fetch']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Authentication failed|401/);
    const again = await git(['-C', 'first', 'fetch']);
    expect(again.asked).toBe(true);
  });

  it('signs a device in: curl as the device, Chromium as the person', { timeout: 60_000 }, async () => {
    const started = await curl(['-d', 'client_id=git', `${url}/oauth/device_authorization`]);
    expect(started).toMatchObject({ verification_uri: `${url}/tokens/device`, interval: 5 });
    expect(started['user_code']).toMatch(/^[B-Z]{4}-[B-Z]{4}$/);
    const poll = () =>
      curl([
        '-d',
        'grant_type=urn:ietf:params:oauth:grant-type:device_code',
        '-d',
        `device_code=${started['device_code']}`,
        '-u',
        'git:',
        `${url}/oauth/token`,
      ]);
    expect(await poll()).toMatchObject({ error: 'authorization_pending' });
    expect(await poll()).toMatchObject({ error: 'slow_down' });

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(String(started['verification_uri_complete']));
    await logIn(page);
    expect(await page.getByLabel('Code').inputValue()).toBe(started['user_code']);
    expect(await seriousViolations(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS_DIR, 'oauth-device.png'), fullPage: true });
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Sign in to Git?' }).waitFor();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.getByRole('heading', { name: 'Device signed in' }).waitFor();
    await context.close();

    await new Promise((r) => setTimeout(r, 5_000));
    const issued = await poll();
    expect(issued).toMatchObject({ token_type: 'Bearer', scope: 'read', expires_in: 28_800 });
    const host = url.replace('http://', '');
    const clone = await run(
      '/usr/bin/git',
      ['clone', `http://oauth2:${issued['access_token']}@${host}/scm/demo/repo.git`, 'device'],
      {
        cwd: dir,
        env: env(),
      },
    );
    expect(clone.stderr).not.toContain('fatal');
    expect(readFileSync(join(dir, 'device', 'README.md'), 'utf8')).toContain('Demo repository');
    // The device code worked once.
    expect(await poll()).toMatchObject({ error: 'expired_token' });
  });
});
