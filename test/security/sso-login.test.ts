import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuditEvent,
  createTokenGate,
  type OidcLoginOptions,
  oidcLogin,
  type TokenGate,
} from '../../lib/index.js';
import { bareCallback, ssoLogin } from '../support/oidc-login-flow.js';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';

const SECRET = 'a session secret of at least thirty-two bytes';

/** Who the pages say is logged in with these cookies (null: the login page). */
async function loggedInAs(pagesUrl: string, cookies: Map<string, string>): Promise<string | null> {
  const cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const response = await fetch(pagesUrl, { headers: { cookie }, redirect: 'manual' });
  const html = await response.text();
  if (response.status !== 200) return null;
  return /data-user="([^"]*)"/.exec(html)?.[1] ?? (html.includes('My API tokens') ? 'someone' : null);
}

/**
 * Single sign-on through a real OpenID provider (oidc-provider), driven over HTTP: the login
 * cannot be locked from another site, the ID token's signature is checked against the
 * provider's published keys, an e-mail address is a user name only when verified, and names
 * and groups from the claims follow the naming rule.
 */
describe('single sign-on login', () => {
  let server: Server;
  let base: string;
  const gates: TokenGate[] = [];
  const providers: TestOidcProvider[] = [];
  const events: AuditEvent[] = [];
  const app = express();

  /** Mounts token pages at `/<path>/` on a provider of their own; answers their URL. */
  async function mount(
    path: string,
    provider: Parameters<typeof startOidcProvider>[0] extends infer P
      ? Omit<P & object, 'redirectUris'>
      : never,
    login: Partial<OidcLoginOptions> = {},
    gateOptions: Parameters<typeof createTokenGate>[0] = {},
  ): Promise<{ url: string; gate: TokenGate }> {
    const url = `${base}/${path}/`;
    const oidc = await startOidcProvider({ ...provider, redirectUris: [`${url}login/callback`] });
    providers.push(oidc);
    const gate = createTokenGate({ ...gateOptions, onEvent: (event) => events.push(event) });
    gates.push(gate);
    app.use(
      `/${path}`,
      gate.pages({
        login: oidcLogin({
          issuer: oidc.issuer,
          clientId: oidc.clientId,
          clientSecret: oidc.clientSecret,
          redirectUri: `${url}login/callback`,
          allowHttp: true,
          ...login,
        }),
        session: { secret: SECRET, secure: false },
      }),
    );
    return { url, gate };
  }

  beforeAll(async () => {
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    for (const gate of gates) await gate.close();
    for (const provider of providers) await provider.close();
  });

  it('cannot be locked by cookie-less callbacks from another site', async () => {
    const { url } = await mount('lock', {});
    // Twenty <img src=".../login/callback"> on any page: refused, and never counted.
    for (let i = 0; i < 20; i++) expect(await bareCallback(url)).toBe(401);
    const login = await ssoLogin(url, 'carol');
    expect(login.status).toBe(303);
    expect(await loggedInAs(url, login.cookies)).not.toBeNull();
  });

  it('still counts failed callbacks that carry this browser’s login cookie, per address', async () => {
    const { url } = await mount('counted', {}, {}, { loginThrottle: { maxFailuresPerIp: 3 } });
    // The provider refuses (error=access_denied): a real failed login of this browser.
    for (let i = 0; i < 3; i++) {
      const start = await fetch(`${url}login/sso`, { redirect: 'manual' });
      const cookie = start.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');
      const state = new URL(start.headers.get('location')!).searchParams.get('state');
      const callback = await fetch(`${url}login/callback?error=access_denied&state=${state}`, {
        headers: { cookie },
        redirect: 'manual',
      });
      expect(callback.status).toBe(401);
    }
    const blocked = await fetch(`${url}login/sso`, { redirect: 'manual' });
    expect(blocked.status).toBe(429);
  });

  it('refuses an ID token signed with a key the provider does not publish', async () => {
    const forger = await generateKeyPair('RS256');
    const { url } = await mount('forged', {
      async rewriteIdToken(idToken) {
        // Same claims, same key id, another key: only the signature is wrong.
        const { kid } = decodeProtectedHeader(idToken);
        return new SignJWT(decodeJwt(idToken))
          .setProtectedHeader({ alg: 'RS256', ...(kid === undefined ? {} : { kid }) })
          .sign(forger.privateKey);
      },
    });
    const before = events.length;
    const login = await ssoLogin(url, 'carol');
    expect(login.status).toBe(401);
    expect(await loggedInAs(url, login.cookies)).toBeNull();
    expect(events.slice(before).some((e) => e.type === 'auth.denied' && e.code === 'LOGIN_FAILED')).toBe(
      true,
    );
  });

  it('takes an e-mail address as the user name only when the provider verified it', async () => {
    const mails: Record<string, Record<string, unknown>> = {
      verified: { email: 'verified@example.com', email_verified: true },
      unverified: { email: 'unverified@example.com', email_verified: false },
      unsaid: { email: 'unsaid@example.com' },
      stringly: { email: 'stringly@example.com', email_verified: 'true' },
    };
    const { url } = await mount(
      'email',
      { extraClaims: (id) => mails[id] ?? {} },
      { userClaim: 'email', scopes: ['openid', 'email'] },
    );
    const ok = await ssoLogin(url, 'verified');
    expect(ok.status).toBe(303);
    expect(await loggedInAs(url, ok.cookies)).not.toBeNull();
    for (const who of ['unverified', 'unsaid', 'stringly']) {
      const refused = await ssoLogin(url, who);
      expect(refused.status, who).toBe(401);
      expect(refused.body).toContain('verified');
      expect(await loggedInAs(url, refused.cookies)).toBeNull();
    }
  });
});
