import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import express from 'express';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningProxy, startProxy } from '../../examples/bitbucket-proxy.js';
import {
  type AuditEvent,
  createTokenGate,
  oidcLogin,
  passwordLogin,
  type TokenGate,
} from '../../lib/index.js';
import { launchChromium, pageWeight, SHOTS_DIR, seriousViolations } from '../support/browser.js';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';

const run = promisify(execFile);
const SECRET = 'a session secret of at least thirty-two bytes';
const PASSWORDS: Record<string, string> = { alice: 'alice-password', admin: 'admin-password' };

/**
 * The token pages in a real Chromium: the example proxy as a newcomer runs it (password login
 * against the demo upstream, then `git clone` with the token copied from the page), and a
 * second app with group permissions, a token manager and single sign-on through a real
 * OpenID provider.
 */
describe('token pages in Chromium', () => {
  let browser: Browser;
  let proxy: RunningProxy;
  let gate: TokenGate;
  let server: Server;
  let base: string;
  let oidc: TestOidcProvider;
  let work: string;
  const events: AuditEvent[] = [];
  const figures: string[] = [];

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(SHOTS_DIR, `${name}.png`), fullPage: true });

  async function newPage(
    options: { javaScript?: boolean; dark?: boolean } = {},
  ): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({
      viewport: { width: 1200, height: 800 },
      javaScriptEnabled: options.javaScript ?? true,
      colorScheme: options.dark ? 'dark' : 'light',
    });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    page.on('dialog', (dialog) => dialog.accept());
    return { context, page };
  }

  async function logIn(page: Page, url: string, user: string, password: string, label = 'Username') {
    await page.goto(url);
    await page.getByLabel(label).fill(user);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'My API tokens' }).waitFor();
  }

  async function createToken(page: Page, name: string, scope: 'Read' | 'Write' = 'Read') {
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByRole('radio', { name: new RegExp(`^${scope}`) }).check();
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByRole('heading', { name: 'Token created' }).waitFor();
    return (await page.locator('#new-token').textContent())!.trim();
  }

  beforeAll(async () => {
    browser = await launchChromium();
    work = mkdtempSync(join(tmpdir(), 'eat-pages-'));
    proxy = await startProxy({
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: '',
      BITBUCKET_URL: '',
      TOKEN_STORE: 'memory:',
    });

    gate = createTokenGate({
      groups: { alice: ['developers'], admin: ['admins'] },
      permissions: { createWriteTokens: ['admins'], manageOthers: ['admins'] },
      expiry: { maxDays: 90 },
      onEvent: (event) => events.push(event),
    });
    const app = express();
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    oidc = await startOidcProvider({
      redirectUris: [`${base}/sso/login/callback`],
      groups: { carol: ['admins', 'unrelated'] },
    });
    app.use(
      '/tokens',
      gate.pages({
        login: passwordLogin({
          verify: async (user, password) =>
            PASSWORDS[user] === password ? { name: user, slug: user } : null,
        }),
        session: { secret: SECRET, secure: false },
      }),
    );
    app.use(
      '/sso',
      gate.pages({
        login: oidcLogin({
          issuer: oidc.issuer,
          clientId: oidc.clientId,
          clientSecret: oidc.clientSecret,
          redirectUri: `${base}/sso/login/callback`,
          groupsClaim: 'groups',
          allowHttp: true,
        }),
        session: { secret: SECRET, secure: false, sameSite: 'strict', cookieName: 'sso_session' },
      }),
    );
  });

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    // Only what beforeAll got to (a missing Chromium stops it at its first line): an unset
    // server's close callback would never run and hold the hook for its whole timeout.
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await gate?.close();
    await oidc?.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
    if (figures.length > 0) console.log(`token pages figures:\n  ${figures.join('\n  ')}`);
  });

  it('logs in with the demo password, creates a read token, copies it and clones with the line it shows', {
    timeout: 60_000,
  }, async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: proxy.url });
    const page = await context.newPage();
    const loginWeight = await pageWeight(page, () => page.goto(`${proxy.url}/tokens/`));
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    await shot(page, 'login');
    await page.getByLabel('Bitbucket username').fill('demo');
    await page.getByLabel('Password').fill('demo');
    const started = performance.now();
    const mineWeight = await pageWeight(page, () => page.getByRole('button', { name: 'Log in' }).click());
    await page.getByRole('heading', { name: 'My API tokens' }).waitFor();
    await shot(page, 'my-tokens');
    await page.getByLabel('Name', { exact: true }).fill('my laptop');
    const createdWeight = await pageWeight(page, () =>
      page.getByRole('button', { name: 'Create token' }).click(),
    );
    await page.getByRole('heading', { name: 'Token created' }).waitFor();
    await page.getByRole('button', { name: 'Copy token' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    const elapsed = performance.now() - started;
    expect(copied).toMatch(/^bbt_[0-9A-Za-z]{60,}$/);
    expect(copied).toBe((await page.locator('#new-token').textContent())!.trim());
    expect(page.url()).not.toContain(copied);
    await shot(page, 'token-created');

    const cloneLine = (await page.locator('#clone-line').textContent())!.trim();
    expect(cloneLine).toBe(
      `git -c http.extraHeader="Authorization: Bearer ${copied}" clone ${proxy.url}/scm/demo/repo.git`,
    );
    await run('bash', ['-c', cloneLine], {
      cwd: work,
      env: { ...process.env, HOME: work, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' },
    });
    expect(readFileSync(join(work, 'repo', 'README.md'), 'utf8')).toContain('Demo repository');
    const curlLine = (await page.locator('#curl-line').textContent())!.trim();
    const { stdout } = await run('bash', ['-c', `${curlLine} -s`]);
    expect(JSON.parse(stdout).user).toBe('demo');

    // Back on the list the token is there, used, from this address; the secret is not.
    await page.getByRole('link', { name: 'Done' }).click();
    const row = page.getByRole('row', { name: /my laptop/ });
    expect(await page.content()).not.toContain(copied);
    await page.reload();
    await row.getByText(/from 127\.0\.0\.1/).waitFor();
    const managerWeight = await pageWeight(page, () =>
      page.getByRole('link', { name: 'Token manager' }).click(),
    );
    figures.push(
      `login to a copied token: ${elapsed.toFixed(0)} ms`,
      `bytes transferred: login page (first visit, with CSS and JS) ${loginWeight}, my tokens ${mineWeight}, token created ${createdWeight}, token manager ${managerWeight}`,
    );
    await context.close();
  });

  it('works with the keyboard alone: skip link, log in, create a token, copy it', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    await page.goto(`${base}/tokens/login`);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('username');
    await page.keyboard.type('alice');
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORDS['alice']!);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'My API tokens' }).waitFor();
    await page.getByLabel('Name', { exact: true }).focus();
    await page.keyboard.type('typed');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Token created' }).waitFor();
    // Tab to the copy button and press it.
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement?.textContent)) === 'Copy token') break;
    }
    await page.keyboard.press('Enter');
    await page.getByText('Copied to the clipboard.').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(
      (await page.locator('#new-token').textContent())!.trim(),
    );
    await context.close();
  });

  it('refuses a second token from a resent create form', async () => {
    const { context, page } = await newPage();
    await logIn(page, `${base}/tokens/`, 'alice', PASSWORDS['alice']!);
    await page.getByLabel('Name', { exact: true }).fill('resent');
    const formId = await page.locator('input[name=formId]').first().inputValue();
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByRole('heading', { name: 'Token created' }).waitFor();
    const csrf = await page.locator('input[name=_csrf]').first().inputValue();
    // The browser's "resend the form?" as a request with the same cookies and fields.
    const again = await context.request.post(`${base}/tokens/create`, {
      form: { _csrf: csrf, formId, name: 'resent', scope: 'read' },
    });
    expect(again.status()).toBe(400);
    expect(await again.text()).toContain('already sent');
    expect((await gate.tokens.list('alice')).filter((t) => t.name === 'resent')).toHaveLength(1);
    await context.close();
  });

  it('shows write disabled with the reason to a user without createWriteTokens, and refuses a forced one', async () => {
    const { context, page } = await newPage();
    await logIn(page, `${base}/tokens/`, 'alice', PASSWORDS['alice']!);
    const write = page.getByRole('radio', { name: /^Write/ });
    expect(await write.isDisabled()).toBe(true);
    await page.getByText('Write tokens are not available to you').waitFor();
    // A hand-made form: the server refuses it too.
    await page.getByLabel('Name', { exact: true }).fill('forced write');
    await write.evaluate((input: HTMLInputElement) => {
      input.disabled = false;
      input.checked = true;
    });
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByText('You may not create API tokens with write scope.').waitFor();
    expect(await page.getByRole('heading', { name: 'Not allowed' }).isVisible()).toBe(true);
    expect((await gate.tokens.list('alice')).some((t) => t.name === 'forced write')).toBe(false);
    expect(
      events.some((e) => e.type === 'auth.denied' && e.code === 'PERMISSION_DENIED' && e.user === 'alice'),
    ).toBe(true);
    // No link to the token manager, and a 403 there.
    await page.goto(`${base}/tokens/`);
    expect(await page.getByRole('link', { name: 'Token manager' }).count()).toBe(0);
    const response = await page.goto(`${base}/tokens/manage`);
    expect(response!.status()).toBe(403);
    await context.close();
  });

  it('renames a token, rotates it, and revokes one after a confirmation (dialog with script, a page without)', {
    timeout: 60_000,
  }, async () => {
    const { context, page } = await newPage();
    await logIn(page, `${base}/tokens/`, 'alice', PASSWORDS['alice']!);
    await createToken(page, 'to rename');
    await page.getByRole('link', { name: 'Done' }).click();
    await page.getByRole('link', { name: 'to rename' }).click();
    await shot(page, 'token');
    await page.getByLabel('Name', { exact: true }).fill('renamed');
    await page.getByText('Restrictions (optional)').click();
    await page.getByLabel('Allowed IP addresses').fill('10.0.0.0/8\n192.0.2.7');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Your changes were saved.').waitFor();
    await page.getByRole('heading', { name: 'renamed' }).waitFor();
    await page.getByText('IPs: 10.0.0.0/8, 192.0.2.7').waitFor();
    const before = (await gate.tokens.list('alice')).find((t) => t.name === 'renamed')!;
    await page.getByRole('button', { name: 'Rotate token' }).click();
    await page.getByRole('heading', { name: 'Token created' }).waitFor();
    await page.getByText('The old token keeps working until').waitFor();
    const after = (await gate.tokens.list('alice')).filter((t) => t.name === 'renamed');
    expect(after).toHaveLength(2);
    expect(after.find((t) => t.id !== before.id)!.allowedIps).toEqual(['10.0.0.0/8', '192.0.2.7']);

    // With script: a confirmation dialog (accepted), then the row is gone.
    await page.goto(`${base}/tokens/`);
    await page.getByRole('button', { name: `Revoke token renamed` }).first().click();
    await page.getByText('The token was revoked.').waitFor();
    expect((await gate.tokens.list('alice')).filter((t) => t.name === 'renamed')).toHaveLength(1);
    await context.close();

    // Without script: a confirmation page, then revoked.
    const plain = await newPage({ javaScript: false });
    await logIn(plain.page, `${base}/tokens/`, 'alice', PASSWORDS['alice']!);
    await plain.page.getByRole('button', { name: 'Revoke token renamed' }).click();
    await plain.page.getByRole('heading', { name: 'Revoke the token “renamed”?' }).waitFor();
    await shot(plain.page, 'confirm-revoke');
    await plain.page.getByRole('button', { name: 'Revoke token' }).click();
    await plain.page.getByText('The token was revoked.').waitFor();
    expect((await gate.tokens.list('alice')).some((t) => t.name === 'renamed')).toBe(false);
    await plain.context.close();
  });

  it('token manager: filters, revokes on behalf, creates for a user, revokes all of a user', {
    timeout: 60_000,
  }, async () => {
    await gate.tokens.create({ user: 'bob', name: 'bob ci', scope: 'write' });
    await gate.tokens.create({ user: 'bob', name: 'bob laptop', scope: 'read' });
    await gate.tokens.create({ user: 'dave', name: 'dave laptop', scope: 'read', resources: ['PROJ/repo'] });
    const { context, page } = await newPage();
    await logIn(page, `${base}/tokens/`, 'admin', PASSWORDS['admin']!);
    await page.getByRole('link', { name: 'Token manager' }).click();
    await page.getByRole('heading', { name: 'Token manager' }).waitFor();
    await page.locator('#q-scope').selectOption('read');
    await page.getByLabel('Name contains').fill('laptop');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('cell', { name: 'dave', exact: true }).waitFor();
    await shot(page, 'token-manager');
    expect(await page.getByRole('link', { name: 'bob ci' }).count()).toBe(0);
    await page.locator('#q-restricted').selectOption('true');
    await page.getByRole('button', { name: 'Filter' }).click();
    // (Narrowing to restricted tokens is the store's `search`; the page passes the filter on.)
    await page.getByRole('link', { name: 'dave laptop' }).waitFor();
    expect(new URL(page.url()).searchParams.get('restricted')).toBe('true');

    // Revoke on behalf, from the manager's list.
    await page.getByRole('button', { name: 'Revoke token dave laptop' }).click();
    await page.getByText('The token was revoked.').waitFor();
    expect(await gate.tokens.list('dave')).toHaveLength(0);
    const revoked = events.find((e) => e.type === 'token.revoked' && e.user === 'dave');
    expect(revoked).toMatchObject({ actor: 'admin', clientIp: '127.0.0.1' });

    // Create on behalf of bob.
    await page.getByLabel('User', { exact: true }).last().fill('bob');
    await page.locator('form[action$="create"]').getByLabel('Name', { exact: true }).fill('made for bob');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByRole('heading', { name: 'Token created' }).waitFor();
    expect((await gate.tokens.list('bob')).find((t) => t.name === 'made for bob')?.createdBy).toBe('admin');

    // Revoke all of bob.
    await page.goto(`${base}/tokens/manage?user=bob`);
    await page.getByRole('button', { name: 'Revoke all tokens of bob' }).click();
    await page.getByText('Every token of the user was revoked.').waitFor();
    expect(await gate.tokens.list('bob')).toHaveLength(0);
    await context.close();
  });

  it('refuses a form posted from another origin, even with a stolen CSRF token', async () => {
    const { context, page } = await newPage();
    await logIn(page, `${base}/tokens/`, 'alice', PASSWORDS['alice']!);
    const csrf = await page.locator('input[name=_csrf]').first().inputValue();
    // Same site (127.0.0.1), another origin (port): the session cookie is sent, the origin is not ours.
    const evil = createServer((_req, res) => {
      res.setHeader('Content-Type', 'text/html');
      res.end(`<form id="f" method="post" action="${base}/tokens/create">
        <input name="_csrf" value="${csrf}"><input name="name" value="planted"><input name="scope" value="read">
        </form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}/`;
    const refused = page.waitForResponse((r) => r.url().endsWith('/tokens/create'));
    await page.goto(evilUrl);
    expect((await refused).status()).toBe(403);
    await page.getByText('did not come from this site').waitFor();
    expect((await gate.tokens.list('alice')).some((t) => t.name === 'planted')).toBe(false);
    expect(events.some((e) => e.type === 'auth.denied' && e.code === 'CSRF_REJECTED')).toBe(true);
    evil.closeAllConnections();
    await new Promise((resolve) => evil.close(resolve));
    await context.close();
  });

  it('renders hostile names as text everywhere', async () => {
    const { context, page } = await newPage();
    let dialogs = 0;
    page.on('dialog', () => {
      dialogs++;
    });
    const hostile = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>'];
    await gate.tokens.create({ user: 'admin', name: hostile[1]!, scope: 'read' });
    await logIn(page, `${base}/tokens/`, 'admin', PASSWORDS['admin']!);
    await createToken(page, hostile[0]!);
    await page.getByText(hostile[0]!).first().waitFor();
    await page.getByRole('link', { name: 'Done' }).click();
    for (const name of hostile) await page.getByRole('link', { name }).waitFor();
    await page.getByRole('link', { name: hostile[1]! }).click();
    await page.getByRole('heading', { name: hostile[1]! }).waitFor();
    await page.goto(`${base}/tokens/manage`);
    for (const name of hostile) await page.getByRole('link', { name }).waitFor();
    expect(await page.locator('img[src=x]').count()).toBe(0);
    expect(await page.locator('main script').count()).toBe(0);
    expect(dialogs).toBe(0);
    await context.close();
  });

  it('logs in through a real OpenID provider (code flow with PKCE, SameSite=Strict), with groups from the claim', async () => {
    const { context, page } = await newPage();
    await page.goto(`${base}/sso/`);
    await page.getByRole('link', { name: 'Log in with single sign-on' }).click();
    await page.locator('input[name=login]').fill('carol');
    await page.locator('input[name=password]').fill('anything');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('heading', { name: 'My API tokens' }).waitFor();
    expect(await page.getByText('carol').first().isVisible()).toBe(true);
    // `admins` came from the provider's groups claim: carol may manage others and create write tokens.
    await page.getByRole('link', { name: 'Token manager' }).waitFor();
    expect(
      await page
        .getByRole('radio', { name: /^Write/ })
        .first()
        .isDisabled(),
    ).toBe(false);
    const cookies = await context.cookies(`${base}/sso/`);
    const session = cookies.find((c) => c.name === 'sso_session')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/sso' });
    // Logout ends the session.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('You are logged out.').waitFor();
    await page.goto(`${base}/sso/`);
    await page.getByRole('link', { name: 'Log in with single sign-on' }).waitFor();
    await context.close();
  });

  it('refuses a single sign-on callback with a wrong state', async () => {
    const { context, page } = await newPage();
    // Start the login without following its redirect (the login cookie lands in the browser
    // context), then send the provider another state: it comes back with a valid code and that state.
    const start = await context.request.get(`${base}/sso/login/sso`, { maxRedirects: 0 });
    expect(start.status()).toBe(303);
    const authorize = new URL(start.headers()['location']!);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('nonce')).toBeTruthy();
    authorize.searchParams.set('state', 'not-the-state-we-sent');
    await page.goto(authorize.href);
    await page.locator('input[name=login]').fill('mallory');
    await page.locator('input[name=password]').fill('anything');
    const callback = page.waitForResponse((r) => r.url().includes('/sso/login/callback'));
    await page.getByRole('button', { name: 'Sign-in' }).click();
    const response = await callback;
    expect(new URL(response.url()).searchParams.get('state')).toBe('not-the-state-we-sent');
    expect(response.status()).toBe(401);
    await page.getByText('could not be completed').waitFor();
    expect(events.some((e) => e.type === 'auth.denied' && e.code === 'LOGIN_FAILED')).toBe(true);
    expect(await gate.tokens.list('mallory')).toHaveLength(0);
    await context.close();
  });

  it('passes an axe-core scan on every page, light and dark, and saves screenshots', {
    timeout: 120_000,
  }, async () => {
    for (const dark of [false, true]) {
      const { context, page } = await newPage({ dark });
      const suffix = dark ? '-dark' : '';
      const scan = async (name: string) => {
        await shot(page, `${name}${suffix}`);
        const found = await seriousViolations(page);
        expect(found, `${name}${suffix}: ${JSON.stringify(found, null, 1)}`).toEqual([]);
      };
      await page.goto(`${base}/tokens/login`);
      await scan('scan-login');
      await logIn(page, `${base}/tokens/`, 'admin', PASSWORDS['admin']!);
      await scan('scan-my-tokens');
      await createToken(page, `scanned${suffix}`);
      await scan('scan-token-created');
      await page.getByRole('link', { name: 'Done' }).click();
      await page.getByRole('link', { name: `scanned${suffix}` }).click();
      await scan('scan-token');
      await page.goto(`${base}/tokens/manage`);
      await scan('scan-token-manager');
      await page.goto(`${base}/tokens/manage?createdAfter=not-a-date`);
      await scan('scan-token-manager-error');
      await page.goto(`${base}/tokens/no-such-page`);
      await scan('scan-not-found');
      // The confirmation step that browsers without script get.
      await page.goto(`${base}/tokens/`);
      await page
        .locator('form[action*="/revoke"]')
        .first()
        .evaluate((form: HTMLFormElement) => form.submit());
      await page.getByRole('heading', { name: /Revoke the token/ }).waitFor();
      await scan('scan-confirm');
      await context.close();
    }
  });
});
