import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenGate, MemoryTokenStore, passwordLogin, type TokenGate } from '../../lib/index.js';
import { launchChromium } from '../support/browser.js';

const login = passwordLogin({
  verify: async (user, password) => (password === `${user}-pw` ? { name: user, slug: user } : null),
});

/**
 * Clickjacking and cross-site consent, in Chromium: a logged-in person visits an attacker's
 * page that frames the consent page (to trick a click on "Allow"), or posts a consent itself.
 */
describe('the consent page against an attacker’s page (Chromium)', () => {
  let browser: Browser;
  let gate: TokenGate;
  let app: Server;
  let attacker: Server;
  let appUrl: string;
  let attackerUrl: string;
  let consentUrl: string;
  let attackerHtml = '';

  beforeAll(async () => {
    gate = createTokenGate({ store: new MemoryTokenStore() });
    const site = express();
    site.use(
      '/tokens',
      gate.pages({
        login,
        session: { secret: 'a session secret of at least thirty-two bytes', secure: false },
      }),
    );
    site.use('/oauth', gate.oauth());
    app = createServer(site);
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    attacker = createServer((_req, res) =>
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(attackerHtml),
    );
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    // Another site for the browser: `localhost` is not `127.0.0.1`.
    attackerUrl = `http://localhost:${(attacker.address() as AddressInfo).port}/`;
    const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
    consentUrl = `${appUrl}/tokens/oauth/authorize?${new URLSearchParams({
      client_id: 'git',
      redirect_uri: 'http://127.0.0.1:9/',
      response_type: 'code',
      state: 's',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    })}`;
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => app.close(resolve));
    await new Promise((resolve) => attacker.close(resolve));
    await gate.close();
  });

  async function loggedInPage() {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${appUrl}/tokens/login`);
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', 'alice-pw');
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    // Logged in: the consent page shows at its own address.
    await page.goto(consentUrl);
    expect(await page.textContent('body')).toContain('Sign in to Git?');
    return { context, page };
  }

  it('cannot be framed by another site', async () => {
    const { context, page } = await loggedInPage();
    attackerHtml = `<!doctype html><iframe id="f" src="${consentUrl.replace(/&/g, '&amp;')}" width="800" height="600"></iframe>`;
    await page.goto(attackerUrl);
    await page.waitForTimeout(1_000);
    const framed = page.frames().find((f) => f !== page.mainFrame());
    expect(framed).toBeDefined();
    const text = await framed!.evaluate(() => document.body?.textContent ?? '').catch(() => '');
    // Blocked outright (Chromium's error page): not the consent page, nor the login page.
    expect(framed!.url()).toMatch(/^chrome-error:/);
    expect(text).not.toContain('Sign in to Git?');
    expect(text).not.toContain('Log in');
    await context.close();
  }, 60_000);

  it('refuses a consent another site posts, and sends no code anywhere', async () => {
    const { context, page } = await loggedInPage();
    const fields = await page.$$eval('input[type="hidden"]', (inputs) =>
      inputs.map((i) => [(i as HTMLInputElement).name, (i as HTMLInputElement).value]),
    );
    // The attacker knows every field but the CSRF token.
    const hidden = fields
      .filter(([name]) => name !== '_csrf')
      .map(([name, value]) => `<input type="hidden" name="${name}" value="${value}">`)
      .join('');
    attackerHtml = `<!doctype html><form id="f" method="post" action="${appUrl}/tokens/oauth/authorize">${hidden}<input name="_csrf" value="guess"><input name="decision" value="allow"><input name="grantScope" value="read"><input name="lifetime" value="28800000"></form><script>document.getElementById('f').submit()</script>`;
    const answer = page.waitForResponse((r) => r.url().startsWith(`${appUrl}/tokens/oauth/authorize`));
    await page.goto(attackerUrl);
    const res = await answer;
    expect(res.status()).toBe(403);
    expect(res.headers()['location']).toBeUndefined();
    expect(await gate.tokens.list('alice')).toHaveLength(0);
    await context.close();
  }, 60_000);
});
