import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AccessTokenRegistry, type Principal } from '../../examples/demo-access-tokens.js';

/**
 * A small HTTP server speaking the documented shapes of the two Bitbucket Data Center
 * endpoints the library calls (REST API 1.0, as in the 8.x documentation):
 * - `GET /rest/api/1.0/admin/users/more-members?context=<user>&start&limit`: a page of the
 *   user's groups `{ size, limit, isLastPage, start, nextPageStart?, values: [{ name, deletable }] }`,
 *   for a Bearer admin token;
 * - `GET /rest/api/1.0/users/{slug}`: the user `{ name, slug, id, displayName, … }`, for that
 *   user's own Basic credentials; 401 with Bitbucket's error body otherwise.
 * - `GET /rest/api/1.0/users?filter=`: a page of users whose name, display name or e-mail
 *   starts with the filter, for any authenticated user; every authenticated answer carries
 *   `X-AUSERNAME`. Accounts in `captcha` answer 401 with the CAPTCHA exception and the
 *   `X-Authentication-Denied-Reason` header, as Bitbucket does after too many failures.
 * - With `accessTokens`: Bitbucket's personal HTTP access tokens (`examples/demo-access-tokens.ts`:
 *   the `/rest/access-tokens/latest/users/{slug}` API, and `Bearer` tokens accepted on the
 *   user lookups and `GET /rest/api/latest/application-properties`, which names the caller in
 *   `X-AUSERNAME`).
 */
export interface BitbucketStandIn {
  baseUrl: string;
  calls: string[];
  /** `ok` (default), `error` (500 on everything), `hang` (never answers). */
  mode: 'ok' | 'error' | 'hang';
  /** With `accessTokens`: the tokens Bitbucket issued. */
  accessTokens: AccessTokenRegistry;
  /** Creates the next access tokens but never answers the `PUT` (an answer lost on the way). */
  dropCreateAnswers: boolean;
  close(): Promise<void>;
}

export interface StandInOptions {
  adminToken: string;
  groups: Record<string, string[]>;
  passwords: Record<string, string>;
  /** Slugs that differ from the lower-cased name (directory users: `John.Doe@corp` → `john.doe_corp`). */
  slugs?: Record<string, string>;
  /** Accounts that must solve a CAPTCHA before they may log in again. */
  captcha?: string[];
  /** Largest page the stand-in returns, whatever `limit` asks (to exercise paging). */
  pageSize?: number;
  /** Serve Bitbucket's access-token API; `admins` are system administrators. */
  accessTokens?: { admins?: string[] };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json;charset=UTF-8' });
  res.end(JSON.stringify(body));
}

const unauthorized = (res: ServerResponse) =>
  send(res, 401, {
    errors: [
      {
        context: null,
        message: 'Authentication failed. Please check your credentials and try again.',
        exceptionName: 'com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException',
      },
    ],
  });

/**
 * What access-token mode asks with a token: who am I (`application-properties` names the caller
 * in `X-AUSERNAME`), and user lookups. True when answered; Basic passwords on `users` fall
 * through to the stand-in's own handling (CAPTCHA and all).
 */
function accessTokenAnswer(
  registry: AccessTokenRegistry,
  url: URL,
  principal: Principal | 'refused' | null,
  res: ServerResponse,
  bearer: boolean,
): boolean {
  const properties = /^\/rest\/api\/(?:1\.0|latest)\/application-properties$/.test(url.pathname);
  const byToken = principal !== null && principal !== 'refused' && principal.via === 'token';
  // A refused Basic password is the stand-in's own business (CAPTCHA accounts).
  const users =
    /^\/rest\/api\/(?:1\.0|latest)\/users$/.test(url.pathname) &&
    (byToken || (principal === 'refused' && bearer));
  if (!properties && !users) return false;
  if (principal === 'refused') {
    unauthorized(res);
    return true;
  }
  if (principal !== null) res.setHeader('X-AUSERNAME', principal.user.name);
  if (properties) {
    send(res, 200, { version: '9.4.0', buildNumber: '9004000', displayName: 'Bitbucket' });
    return true;
  }
  const filter = (url.searchParams.get('filter') ?? '').toLowerCase();
  const values = registry.accounts
    .filter((a) => a.name.toLowerCase().startsWith(filter))
    .map((a, id) => ({ name: a.name, slug: a.slug, id, displayName: a.name, active: true, type: 'NORMAL' }));
  send(res, 200, { size: values.length, limit: 100, isLastPage: true, start: 0, values });
  return true;
}

export async function startBitbucketStandIn(options: StandInOptions): Promise<BitbucketStandIn> {
  const pageSize = options.pageSize ?? 2;
  const state = { mode: 'ok' as BitbucketStandIn['mode'], dropCreateAnswers: false };
  const calls: string[] = [];
  const hanging = new Set<ServerResponse>();
  const registry = new AccessTokenRegistry(
    Object.entries(options.passwords).map(([name, password]) => ({
      name,
      slug: options.slugs?.[name] ?? name.toLowerCase(),
      password,
      admin: options.accessTokens?.admins?.includes(name) ?? false,
    })),
  );
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    calls.push(`${req.method} ${url.pathname}${url.search}`);
    if (state.mode === 'hang') {
      hanging.add(res);
      return;
    }
    if (state.mode === 'error') return send(res, 500, { errors: [{ message: 'Internal error' }] });
    const auth = req.headers.authorization ?? '';
    if (options.accessTokens !== undefined) {
      const principal = registry.authenticate(req.headers.authorization);
      if (url.pathname.startsWith('/rest/access-tokens/')) {
        if (req.method === 'PUT' && state.dropCreateAnswers) {
          // Bitbucket acts, but its answer never arrives.
          void registry.handle(
            req,
            { writeHead: () => {}, end: () => hanging.add(res) } as never,
            url.pathname,
            principal,
          );
          return;
        }
        void registry.handle(req, res, url.pathname, principal);
        return;
      }
      if (accessTokenAnswer(registry, url, principal, res, /^bearer /i.test(auth))) return;
    }
    if (url.pathname === '/rest/api/1.0/admin/users/more-members') {
      if (auth !== `Bearer ${options.adminToken}`) return unauthorized(res);
      const user = url.searchParams.get('context') ?? '';
      const known = Object.keys(options.groups).find((u) => u.toLowerCase() === user.toLowerCase());
      if (known === undefined) {
        return send(res, 404, {
          errors: [
            {
              message: `User ${user} does not exist.`,
              exceptionName: 'com.atlassian.bitbucket.user.NoSuchUserException',
            },
          ],
        });
      }
      const start = Number(url.searchParams.get('start') ?? 0);
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 25), pageSize);
      const all = options.groups[known]!;
      const values = all.slice(start, start + limit).map((name) => ({ name, deletable: true }));
      const isLastPage = start + values.length >= all.length;
      return send(res, 200, {
        size: values.length,
        limit,
        isLastPage,
        start,
        values,
        ...(isLastPage ? {} : { nextPageStart: start + values.length }),
      });
    }
    const slugOf = (name: string) => options.slugs?.[name] ?? name.toLowerCase();
    const [scheme, encoded] = auth.split(' ');
    const decoded = scheme === 'Basic' && encoded ? Buffer.from(encoded, 'base64').toString() : '';
    const colon = decoded.indexOf(':');
    const claimed = decoded.slice(0, colon);
    const account = Object.keys(options.passwords).find((u) => u.toLowerCase() === claimed.toLowerCase());
    if (/^\/rest\/api\/(?:1\.0|latest)\/users$/.test(url.pathname)) {
      if (account !== undefined && options.captcha?.includes(account)) {
        res.setHeader('X-Authentication-Denied-Reason', 'CAPTCHA_CHALLENGE; login-url=http://stand-in/login');
        return send(res, 401, {
          errors: [
            {
              context: null,
              message: 'Too many failed login attempts: solve a CAPTCHA in the browser.',
              exceptionName: 'com.atlassian.bitbucket.auth.CaptchaRequiredAuthenticationException',
            },
          ],
        });
      }
      if (colon < 0 || account === undefined || options.passwords[account] !== decoded.slice(colon + 1))
        return unauthorized(res);
      const filter = (url.searchParams.get('filter') ?? '').toLowerCase();
      const values = Object.keys(options.passwords)
        .filter((u) => u.toLowerCase().startsWith(filter))
        .map((name, id) => ({
          name,
          slug: slugOf(name),
          id,
          displayName: name,
          active: true,
          type: 'NORMAL',
        }));
      res.setHeader('X-AUSERNAME', account);
      return send(res, 200, { size: values.length, limit: 100, isLastPage: true, start: 0, values });
    }
    const userPath = /^\/rest\/api\/1\.0\/users\/([^/]+)$/.exec(url.pathname);
    if (userPath) {
      const slug = decodeURIComponent(userPath[1]!);
      const [scheme, encoded] = auth.split(' ');
      const decoded = scheme === 'Basic' && encoded ? Buffer.from(encoded, 'base64').toString() : '';
      const colon = decoded.indexOf(':');
      const user = decoded.slice(0, colon);
      const known = Object.keys(options.passwords).find((u) => u.toLowerCase() === user.toLowerCase());
      if (colon < 0 || known === undefined || options.passwords[known] !== decoded.slice(colon + 1))
        return unauthorized(res);
      if (known.toLowerCase() !== slug.toLowerCase())
        return send(res, 404, { errors: [{ message: 'No such user' }] });
      return send(res, 200, {
        name: known,
        emailAddress: `${known}@example.com`,
        id: 1,
        displayName: known,
        active: true,
        slug: known.toLowerCase(),
        type: 'NORMAL',
      });
    }
    send(res, 404, { errors: [{ message: 'Not found' }] });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    calls,
    get mode() {
      return state.mode;
    },
    set mode(value) {
      state.mode = value;
    },
    accessTokens: registry,
    get dropCreateAnswers() {
      return state.dropCreateAnswers;
    },
    set dropCreateAnswers(value) {
      state.dropCreateAnswers = value;
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
