import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type ProviderClass from 'oidc-provider';

/**
 * The notices oidc-provider prints for a test set-up like this one (the Node.js 20 "Unsupported
 * runtime" check, the development adapter, keys and login form), which a green run must not
 * show. Anything else it says still reaches the console. Returns what puts console.warn back.
 */
function muteDevNotices(): () => void {
  const warn = console.warn;
  // Not anchored: on a terminal the line starts with a colour code.
  const notice = /oidc-provider WARNING: (?:Unsupported runtime|(?:a )?quick start development-only)/;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] !== 'string' || !notice.test(args[0])) warn(...args);
  };
  return () => {
    console.warn = warn;
  };
}

/**
 * A real OpenID provider (`oidc-provider`, a certified implementation) on a free port, with
 * its development login form (any login name, any password) and consent skipped. The login
 * name becomes `preferred_username`; `groups` lists the groups given for it.
 */
export interface TestOidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
}

export async function startOidcProvider(options: {
  redirectUris: string[];
  groups?: Record<string, string[]>;
  /** More claims for a login name (`email`, `email_verified`, …), released with the `email` scope. */
  extraClaims?: (id: string) => Record<string, unknown>;
  /** Rewrites each ID token the token endpoint hands out (a forged signature, for instance). */
  rewriteIdToken?: (idToken: string) => Promise<string>;
}): Promise<TestOidcProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = 'token-pages';
  const clientSecret = 'a client secret for the tests only';
  let unmute = muteDevNotices();
  const { default: Provider } = await import('oidc-provider').finally(unmute);
  unmute = muteDevNotices();
  const provider: ProviderClass = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: options.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    cookies: { keys: ['test cookie key for the provider'] },
    ttl: {
      Interaction: 600,
      Grant: 600,
      Session: 600,
      AccessToken: 600,
      IdToken: 600,
      AuthorizationCode: 60,
    },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'groups'],
      email: ['email', 'email_verified'],
    },
    pkce: { required: () => true },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            preferred_username: id,
            groups: options.groups?.[id] ?? [],
            ...options.extraClaims?.(id),
          };
        },
      };
    },
    // First-party client: no consent screen.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client!.clientId,
        accountId: ctx.oidc.session!.accountId!,
      });
      grant.addOIDCScope('openid profile email');
      grant.addOIDCClaims(['preferred_username', 'groups', 'email', 'email_verified']);
      await grant.save();
      return grant;
    },
  });
  unmute();
  const rewrite = options.rewriteIdToken;
  if (rewrite !== undefined) {
    provider.use(async (ctx, next) => {
      await next();
      const body = ctx.body as { id_token?: unknown } | undefined;
      if (ctx.path === '/token' && typeof body?.id_token === 'string')
        ctx.body = { ...body, id_token: await rewrite(body.id_token) };
    });
  }
  server.on('request', provider.callback());
  return {
    issuer,
    clientId,
    clientSecret,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
