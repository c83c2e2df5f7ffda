import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bitbucketAccessTokens,
  bitbucketPasswordVerifier,
  createTokenGate,
  passwordLogin,
  type TokenGate,
} from '../../lib/index.js';
import { type BitbucketStandIn, startBitbucketStandIn } from '../support/bitbucket-stand-in.js';
import { launchChromium, seriousViolations } from '../support/browser.js';

/**
 * The token pages in access-token mode, in a real Chromium: after a password login the create
 * form asks for the Bitbucket password again and mints the Bitbucket token with it.
 */
describe('token pages in access-token mode (Chromium)', () => {
  let browser: Browser;
  let bitbucket: BitbucketStandIn;
  let gate: TokenGate;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    browser = await launchChromium();
    bitbucket = await startBitbucketStandIn({
      adminToken: 'groups-token',
      groups: {},
      passwords: { alice: 'alice-pw' },
      accessTokens: {},
    });
    gate = createTokenGate({
      upstream: bitbucketAccessTokens({
        baseUrl: bitbucket.baseUrl,
        encryptionKeys: [{ id: 'k1', key: randomBytes(32) }],
      }),
    });
    const app = express();
    app.use(
      '/tokens',
      gate.pages({
        login: passwordLogin({ verify: bitbucketPasswordVerifier({ baseUrl: bitbucket.baseUrl }) }),
        session: { secret: 'a session secret of at least thirty-two bytes', secure: false },
      }),
    );
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await browser?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await gate?.close();
    await bitbucket?.close();
  });

  it('creates a token with the password typed again, and passes an axe-core scan', {
    timeout: 60_000,
  }, async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    await page.goto(`${base}/tokens/`);
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('alice-pw');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'My API tokens' }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);

    // Without the password: the form says what it needs, next to the field.
    await page.getByLabel('Name', { exact: true }).fill('laptop');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.locator('#f-bitbucketPassword-error').waitFor();
    // In the form's words, not the management API's field names.
    expect(await page.locator('#f-bitbucketPassword-error').textContent()).toContain(
      'Type your Bitbucket password here again',
    );
    expect(await seriousViolations(page)).toEqual([]);

    await page.getByLabel('Name', { exact: true }).fill('laptop');
    await page.getByLabel('Your Bitbucket password').fill('alice-pw');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByRole('heading', { name: 'Token created' }).waitFor();
    expect((await page.locator('#new-token').textContent())?.trim()).toMatch(/^bbt_/);
    expect(await page.content()).not.toContain('alice-pw');
    expect(bitbucket.accessTokens.of('alice')).toHaveLength(1);
    await context.close();
  });
});
