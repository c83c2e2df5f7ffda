/**
 * A complete Bitbucket-facing reverse proxy built with express-api-tokens.
 *
 *   npm start                      # self-contained demo (local git repository, tokens in ./data/tokens.db;
 *                                  # restarts keep its repository, tokens and secrets under ./data/)
 *   BITBUCKET_URL=https://bitbucket.example.com TOKEN_STORE=postgres://proxy@db/tokens npm start
 *
 * Every environment variable is documented in docs/connecting-to-bitbucket.md ("The example proxy").
 */

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { forwardTo } from '../lib/forward/index.js';
import {
  type AuditEvent,
  bitbucketAccessTokens,
  bitbucketEmails,
  bitbucketGroups,
  bitbucketLogin,
  bitbucketPasswordVerifier,
  createTokenGate,
  type FederationRule,
  type GroupsOption,
  type NotifyOptions,
  openTokenStore,
  passwordLogin,
  type RateLimit,
  type TokenGate,
  type TokenGateOptions,
  type UpstreamMode,
} from '../lib/index.js';
import {
  type DemoState,
  demoTokenLines,
  demoTokens,
  openDemoState,
  protectSqliteFiles,
} from './demo-state.js';
import { DEMO_PASSWORD, DEMO_USER, type DemoUpstream, startDemoUpstream } from './demo-upstream.js';

type Env = Record<string, string | undefined>;

const list = (value: string | undefined) =>
  value === undefined
    ? undefined
    : value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

function flag(env: Env, name: string, fallback: boolean): boolean {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!['true', 'false', '1', '0'].includes(value)) throw new Error(`${name} must be true or false`);
  return value === 'true' || value === '1';
}

function days(env: Env, name: string): number | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`${name} must be a whole number of days`);
  return Number(value);
}

/** `RATE_LIMIT` (`requests/seconds`, or `none`): each token's default limit; the demo's is 600 a minute. */
function rateLimitOf(env: Env, demo: boolean): RateLimit | undefined {
  const value = env['RATE_LIMIT'] || (demo ? '600/60' : 'none');
  if (value === 'none') return undefined;
  const match = /^(\d+)\/(\d+)$/.exec(value);
  if (!match) throw new Error('RATE_LIMIT must be requests/seconds (e.g. 600/60) or none');
  return { requests: Number(match[1]), windowSeconds: Number(match[2]) };
}

/**
 * Owners are told (docs/notifications.md): e-mail through `SMTP_URL` from `NOTIFY_FROM` (owners'
 * addresses from Bitbucket with `BITBUCKET_ADMIN_TOKEN`, else `<user>@NOTIFY_EMAIL_DOMAIN`), and
 * signed webhooks to `WEBHOOK_URL` with `WEBHOOK_SECRET`. Neither without its settings.
 */
function notifyOf(env: Env, bitbucketUrl: URL): NotifyOptions | undefined {
  const adminToken = env['BITBUCKET_ADMIN_TOKEN'];
  const domain = env['NOTIFY_EMAIL_DOMAIN'];
  const emailOf = adminToken
    ? bitbucketEmails({ baseUrl: bitbucketUrl.href, token: adminToken })
    : domain
      ? (user: string) => `${user}@${domain}`
      : undefined;
  const email =
    env['SMTP_URL'] && emailOf
      ? {
          smtp: env['SMTP_URL'],
          from: env['NOTIFY_FROM'] || 'API tokens <tokens@localhost>',
          emailOf,
          ...(list(env['NOTIFY_ADMINS']) ? { admins: list(env['NOTIFY_ADMINS'])! } : {}),
          ...(env['PUBLIC_URL'] ? { pagesUrl: new URL('tokens/', env['PUBLIC_URL']).href } : {}),
        }
      : undefined;
  const webhook =
    env['WEBHOOK_URL'] && env['WEBHOOK_SECRET']
      ? { url: env['WEBHOOK_URL'], secret: env['WEBHOOK_SECRET'] }
      : undefined;
  if (!email && !webhook) return undefined;
  return { ...(email ? { email } : {}), ...(webhook ? { webhooks: [webhook] } : {}) };
}

/**
 * `BITBUCKET_UPSTREAM_MODE=access-token`: each token is backed by a Bitbucket HTTP access token,
 * encrypted with `ENCRYPTION_KEYS` (`id:base64key,…`, the first encrypts). The demo uses its
 * own kept key (examples/demo-state.ts) when none is given.
 */
function upstreamMode(env: Env, bitbucketUrl: URL, demo: DemoState | undefined): UpstreamMode | undefined {
  const mode = env['BITBUCKET_UPSTREAM_MODE'] || 'header';
  if (mode === 'header') return undefined;
  if (mode !== 'access-token') throw new Error('BITBUCKET_UPSTREAM_MODE must be header or access-token');
  const keys = list(env['ENCRYPTION_KEYS'])?.map((entry) => {
    const colon = entry.indexOf(':');
    if (colon < 1) throw new Error('ENCRYPTION_KEYS must be id:base64key,… (32-byte keys)');
    return { id: entry.slice(0, colon), key: entry.slice(colon + 1) };
  });
  if (keys === undefined && !demo)
    throw new Error('BITBUCKET_UPSTREAM_MODE=access-token needs ENCRYPTION_KEYS');
  return bitbucketAccessTokens({
    baseUrl: bitbucketUrl.href,
    encryptionKeys: keys ?? [{ id: 'demo', key: Buffer.from(demo!.secrets.encryptionKey, 'base64') }],
    ...(env['BITBUCKET_ADMIN_TOKEN'] ? { adminToken: env['BITBUCKET_ADMIN_TOKEN'] } : {}),
  });
}

export interface RunningProxy {
  server: Server;
  url: string;
  gate: TokenGate;
  /** Where tokens live (the store URL, password hidden). */
  storeUrl: string;
  /**
   * The demo: its upstream and tokens. A token is undefined when an earlier start made it (it
   * still works; its secret is not stored): `keptIds` lists those.
   */
  demo?: {
    upstream: DemoUpstream;
    readToken: string | undefined;
    writeToken: string | undefined;
    keptIds: string[];
    /** Earlier demo tokens revoked because they do not work in this mode (made in header mode). */
    replacedIds: string[];
    state: DemoState;
  };
  close(): Promise<void>;
}

/** Builds and starts the proxy from environment variables. */
export async function startProxy(env: Env = process.env): Promise<RunningProxy> {
  const demo = env['BITBUCKET_URL'] === undefined || env['BITBUCKET_URL'] === '';
  const accessTokenMode = env['BITBUCKET_UPSTREAM_MODE'] === 'access-token';
  // Tokens live where TOKEN_STORE says (REDIS_URL still works); by default in a SQLite file.
  const storeUrl = env['TOKEN_STORE'] || env['REDIS_URL'] || 'sqlite:./data/tokens.db';
  // The demo's repository, stand-in tokens and made-up secrets survive restarts (demo-state.ts).
  const state = demo ? openDemoState(env, storeUrl) : undefined;
  const upstream = state
    ? await startDemoUpstream({ mode: accessTokenMode ? 'access-token' : 'header', root: state.upstreamRoot })
    : undefined;
  const bitbucketUrl = upstream ? upstream.url : new URL(env['BITBUCKET_URL']!);
  const upstreamOption = upstreamMode(env, bitbucketUrl, state);

  const opened = await openTokenStore(storeUrl, {
    env,
    onError: (err) => console.error(`token store: ${err.message}`),
  });
  if (state) protectSqliteFiles(state, storeUrl);

  let groups: GroupsOption | undefined;
  if (env['GROUPS_FILE'])
    groups = JSON.parse(readFileSync(env['GROUPS_FILE'], 'utf8')) as Record<string, string[]>;
  else if (env['BITBUCKET_ADMIN_TOKEN'])
    groups = bitbucketGroups({ baseUrl: bitbucketUrl.href, token: env['BITBUCKET_ADMIN_TOKEN'] });
  else if (demo) groups = { [DEMO_USER]: ['developers'] };

  const permissions = {
    ...(list(env['USE_TOKENS_GROUPS']) ? { useTokens: list(env['USE_TOKENS_GROUPS'])! } : {}),
    ...(list(env['CREATE_TOKENS_GROUPS']) ? { createTokens: list(env['CREATE_TOKENS_GROUPS'])! } : {}),
    ...(list(env['CREATE_WRITE_TOKENS_GROUPS'])
      ? { createWriteTokens: list(env['CREATE_WRITE_TOKENS_GROUPS'])! }
      : {}),
    ...(list(env['MANAGE_OTHERS_GROUPS'])
      ? { manageOthers: list(env['MANAGE_OTHERS_GROUPS'])! }
      : demo
        ? { manageOthers: ['developers'] } // the demo user also sees the token manager
        : {}),
  };
  // One JSON line per audit event: refusals, token changes, failed management logins.
  const logEvent = (event: AuditEvent) => {
    if (event.type !== 'auth.succeeded') console.log(JSON.stringify(event));
  };
  const maxDays = days(env, 'TOKEN_MAX_DAYS');
  const defaultDays = days(env, 'TOKEN_DEFAULT_DAYS');
  // Behind a load balancer, the gate and the management login both judge the real client.
  const ipOptions = {
    ...(list(env['TRUSTED_PROXIES']) ? { trustedProxies: list(env['TRUSTED_PROXIES'])! } : {}),
    ...(env['CLIENT_IP_HEADER'] ? { clientIpHeader: env['CLIENT_IP_HEADER'] } : {}),
  };
  const rateLimit = rateLimitOf(env, demo);
  const notify = notifyOf(env, bitbucketUrl);
  const options: TokenGateOptions = {
    store: opened.store,
    ...(groups ? { groups } : {}),
    permissions,
    ...(list(env['IP_ALLOWLIST']) ? { ipAllowlist: list(env['IP_ALLOWLIST'])! } : {}),
    ...ipOptions,
    ...(env['TOKEN_PEPPER']
      ? { pepper: env['TOKEN_PEPPER'] }
      : state?.kept && state.secrets.pepper
        ? { pepper: state.secrets.pepper }
        : {}),
    ...(env['JWT_SECRET'] && !upstreamOption ? { identity: { jwt: { key: env['JWT_SECRET'] } } } : {}),
    ...(upstreamOption ? { upstream: upstreamOption } : {}),
    ...(maxDays !== undefined || defaultDays !== undefined
      ? {
          expiry: {
            ...(maxDays !== undefined ? { maxDays } : {}),
            ...(defaultDays !== undefined ? { defaultDays } : {}),
          },
        }
      : {}),
    blockPasswordAuth: flag(env, 'BLOCK_PASSWORD_AUTH', true),
    onEvent: logEvent,
    // Prometheus metrics at /metrics (prom-client is an optional peer dependency).
    metrics: true,
    // Per-token rate limits, counted across every proxy sharing the store (docs/rate-limits.md).
    ...(rateLimit ? { rateLimit: { perToken: rateLimit } } : {}),
    ...(notify ? { notify } : {}),
    // CI jobs exchange their identity tokens at /oauth/token (docs/ci.md): trust rules from a JSON file.
    ...(env['FEDERATION_RULES']
      ? { federation: JSON.parse(readFileSync(env['FEDERATION_RULES'], 'utf8')) as FederationRule[] }
      : {}),
  };
  const gate = createTokenGate(options);

  const app = express();
  app.disable('x-powered-by');
  // For load balancers and Prometheus. Serve them on an internal port instead if the proxy faces the internet.
  const health = gate.healthHandlers();
  app.get('/healthz', health.live);
  app.get('/readyz', health.ready);
  app.get('/metrics', gate.metricsHandler());
  // The management API (JSON, Basic login) and, beside it, the token pages (HTML, session login).
  // Failed logins are events too, and are counted in the store so every instance sees them.
  app.use(
    '/tokens/api',
    bitbucketLogin({ baseUrl: bitbucketUrl.href, store: opened.store, onEvent: logEvent, ...ipOptions }),
    // Browsers' Origin is compared with the public URL: changes from another site are refused.
    gate.router(env['PUBLIC_URL'] ? { publicUrl: env['PUBLIC_URL'] } : {}),
  );
  // Anyone who finds one of our tokens (GitHub secret scanning, a colleague) can kill it here:
  // no login, always 202. Pushes through /scm are scanned too (pushProtection, on by default).
  app.post('/tokens/leaked', gate.revocationEndpoint());
  if (!demo && !env['SESSION_SECRET'])
    console.warn('SESSION_SECRET is not set: page sessions end when the proxy restarts.');
  app.use(
    '/tokens',
    gate.pages({
      login: passwordLogin({
        verify: bitbucketPasswordVerifier({ baseUrl: bitbucketUrl.href }),
        usernameLabel: 'Bitbucket username',
      }),
      session: {
        secret:
          env['SESSION_SECRET'] ||
          (state ? Buffer.from(state.secrets.sessionSecret, 'base64') : randomBytes(32)),
        // The demo runs on plain http://127.0.0.1; anything else must be served over HTTPS.
        secure: flag(env, 'SECURE_COOKIES', !demo),
      },
      ...(env['PUBLIC_URL'] ? { publicUrl: env['PUBLIC_URL'] } : {}),
      ...(demo ? { cloneExample: 'scm/demo/repo.git' } : {}),
    }),
  );
  // git signs in through the browser (OAuth 2.0 for credential helpers; docs/git-sign-in.md):
  // consent and device pages under /tokens, the endpoints under /oauth, the metadata at the root.
  // (Not in access-token mode: there each token needs the owner's Bitbucket credentials.)
  if (!upstreamOption) {
    app.use('/oauth', gate.oauth({ ...(env['PUBLIC_URL'] ? { publicUrl: env['PUBLIC_URL'] } : {}) }));
    app.get('/.well-known/oauth-authorization-server', gate.oauthMetadata());
  }
  app.use(['/rest', '/scm'], gate.protect(), forwardTo(bitbucketUrl));

  const host = env['HOST'] ?? '127.0.0.1';
  const server = app.listen(Number(env['PORT'] ?? 8080), host);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  } catch (err) {
    await gate.close();
    await opened.close();
    await upstream?.close();
    state?.close();
    throw err;
  }
  // git pushes can take a while; the defaults would cut long uploads off.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  const { port } = server.address() as AddressInfo;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${port}`;

  let demoInfo: RunningProxy['demo'];
  if (upstream && state) {
    // The first start makes the demo tokens and prints them; later ones keep them (DEMO_NEW_TOKENS=1 renews).
    // Without a kept DATA_DIR the repository and secrets are new, so each start renews them too.
    // Access-token mode mints a Bitbucket token for each, with the demo user's password.
    const credentials = upstreamOption ? { upstream: { password: DEMO_PASSWORD, slug: DEMO_USER } } : {};
    const renew = flag(env, 'DEMO_NEW_TOKENS', false) || !state.kept;
    // A token an earlier start made in header mode has no Bitbucket access token: it is renewed.
    const works = async (id: string) =>
      !upstreamOption || ((await opened.store.get(id))?.upstream ?? null) !== null;
    const made = await demoTokens(gate.tokens, DEMO_USER, renew, credentials, works);
    demoInfo = { upstream, state, ...made };
  }

  return {
    server,
    url,
    gate,
    storeUrl: opened.url,
    ...(demoInfo ? { demo: demoInfo } : {}),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await gate.close();
      await opened.close();
      await upstream?.close();
      state?.close();
    },
  };
}

/**
 * The `git config` lines that make git sign in through the browser with git-credential-oauth
 * (0.4.2 and later) for this proxy: a cache for the short-lived token, then the OAuth helper
 * with this server's client id and endpoints (relative to the host, as the helper reads them).
 * The helpers are set for this URL only: other hosts (GitHub…) keep their own.
 */
export function gitSignInConfig(url: string): string[] {
  return [
    `$ git config --global --add credential.${url}.helper "cache --timeout 28800"`,
    `$ git config --global --add credential.${url}.helper oauth`,
    `$ git config --global credential.${url}.oauthClientId git`,
    `$ git config --global credential.${url}.oauthAuthURL /tokens/oauth/authorize`,
    `$ git config --global credential.${url}.oauthTokenURL /oauth/token`,
    `$ git config --global credential.${url}.oauthDeviceAuthURL /oauth/device_authorization`,
  ];
}

/** The demo's welcome text: tokens and commands that work as printed (and after a restart). */
export function demoInstructions(proxy: RunningProxy): string {
  const { url } = proxy;
  // Tokens an earlier start printed are not shown again: the commands name them by placeholder.
  const { readToken = '<read token>', writeToken = '<write token>' } = proxy.demo!;
  const host = url.replace('http://', '');
  return [
    `express-api-tokens demo proxy on ${url} (upstream: a local git repository; tokens in ${proxy.storeUrl}; ${
      proxy.demo!.upstream.mode === 'access-token'
        ? 'each token backed by a Bitbucket access token'
        : 'identity forwarded in X-Forwarded-User'
    })`,
    ...demoTokenLines(proxy.demo!, DEMO_USER),
    '',
    'Clone with the read token as the password, or as a Bearer header:',
    `  $ git clone http://${DEMO_USER}:${readToken}@${host}/scm/demo/repo.git demo-repo`,
    `  $ git -c http.extraHeader="Authorization: Bearer ${readToken}" clone ${url}/scm/demo/repo.git demo-repo-2`,
    'Push with the write token (the read token is refused):',
    `  $ git -C demo-repo -c user.name=Demo -c user.email=demo@example.com commit --allow-empty -m "Hello through the proxy"`,
    `  $ git -C demo-repo push http://${DEMO_USER}:${writeToken}@${host}/scm/demo/repo.git HEAD:main`,
    'Call the REST API (the upstream echoes the identity it was given):',
    `  $ curl -s -H "Authorization: Bearer ${readToken}" ${url}/rest/api/1.0/projects`,
    "Every answer carries the token's rate limit (RateLimit headers, 600 a minute in the demo):",
    `  $ curl -s -o /dev/null -D - -H "Authorization: Bearer ${readToken}" ${url}/rest/api/1.0/projects`,
    'Create and list tokens through the management API with the demo login (user demo, password demo):',
    `  $ curl -s -u ${DEMO_USER}:${DEMO_PASSWORD} -H "Content-Type: application/json" -d '{"name":"my laptop","scope":"read","expiresInDays":30}' ${url}/tokens/api`,
    `  $ curl -s -u ${DEMO_USER}:${DEMO_PASSWORD} ${url}/tokens/api`,
    "The management API's OpenAPI contract:",
    `  $ curl -s -u ${DEMO_USER}:${DEMO_PASSWORD} ${url}/tokens/api/openapi.json`,
    '',
    `Token page: ${url}/tokens/ (log in as ${DEMO_USER} / ${DEMO_PASSWORD})`,
    'Leaked tokens: a push that carries a live token is refused and the token revoked; a token found',
    `anywhere else is revoked by a POST to ${url}/tokens/leaked (no login; docs/secret-scanning.md).`,
    '',
    ...(proxy.demo!.upstream.mode === 'access-token'
      ? []
      : [
          'Or let git sign in through the browser, with no token to copy (git-credential-oauth; docs/git-sign-in.md):',
          ...gitSignInConfig(url),
          `Then: git clone ${url}/scm/demo/repo.git demo-repo-3 (your browser opens the login and consent;`,
          'choose Write there to push with it too; with no desktop, put BROWSER=echo before git and open the URL it prints)',
          `Undo: git config --global --remove-section credential.${url}`,
          `CI jobs exchange their own identity token for a short-lived one at ${url}/oauth/token`,
          '(start with FEDERATION_RULES=<rules.json>; docs/ci.md).',
          '',
        ]),
    'Press Ctrl+C to stop.',
  ].join('\n');
}

async function main(): Promise<void> {
  const proxy = await startProxy();
  console.log(
    proxy.demo
      ? demoInstructions(proxy)
      : `express-api-tokens proxy on ${proxy.url} (tokens in ${proxy.storeUrl})\nToken page: ${proxy.url}/tokens/ (log in with your Bitbucket account)`,
  );
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('Shutting down…');
    await proxy.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    const inUse = (err as { code?: unknown })?.code === 'EADDRINUSE';
    console.error(
      inUse
        ? `Port ${process.env['PORT'] ?? 8080} is in use: set PORT to another port (PORT=0 picks a free one).`
        : err instanceof Error
          ? err.message
          : err,
    );
    process.exit(1);
  });
}
