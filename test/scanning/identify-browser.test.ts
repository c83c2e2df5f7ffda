import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenGate, passwordLogin, type TokenGate } from '../../lib/index.js';
import { launchChromium, seriousViolations } from '../support/browser.js';

const SECRET = 'a session secret of at least thirty-two bytes';

/** An administrator identifies a pasted token in the token manager, in a real Chromium. */
describe('identify a token, in Chromium', () => {
  let browser: Browser;
  let gate: TokenGate;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    browser = await launchChromium();
    gate = createTokenGate({ groups: { admin: ['admins'] }, permissions: { manageOthers: ['admins'] } });
    const app = express();
    app.use(
      '/tokens',
      gate.pages({
        login: passwordLogin({
          verify: async (user, password) => (password === `${user}-pw` ? { name: user, slug: user } : null),
        }),
        session: { secret: SECRET, secure: false },
      }),
    );
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    server?.close();
    await gate?.close();
  });

  it('pastes a token, sees whose it is (never the token), and the page passes axe', async () => {
    const { token, info } = await gate.tokens.create({ user: 'alice', name: 'pipeline', scope: 'read' });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/tokens/login`);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('admin-pw');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'My API tokens' }).waitFor();
    await page.getByRole('link', { name: 'Token manager' }).click();
    await page.getByLabel('Token', { exact: true }).fill(token);
    await page.getByRole('button', { name: 'Identify' }).click();
    await page.getByRole('heading', { name: 'Status: live' }).waitFor();
    expect(page.url()).not.toContain(token.slice(4));
    const text = (await page.locator('main').textContent()) ?? '';
    expect(text).toContain(info.id);
    expect(text).toContain('alice');
    expect(text).toContain('pipeline');
    expect(await page.content()).not.toContain(token);
    expect(await seriousViolations(page)).toEqual([]);
    await context.close();
  }, 60_000);
});
