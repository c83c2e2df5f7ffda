import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AccessTokenRegistry,
  authenticationFailed,
  notPermitted,
  type Principal,
  type StandInToken,
} from './demo-access-tokens.js';

/**
 * A local stand-in for Bitbucket, for the demo: it serves one git repository through the real
 * `git http-backend` under `/scm/demo/repo.git`, answers Bitbucket's user lookups for the demo
 * login (`demo` / `demo`), lists accepted pushes on `/rest/demo/pushes`, and on any other `/rest`
 * path echoes who it took the caller for. Two ways of knowing the caller, like the two ways the
 * proxy can connect to Bitbucket:
 * - `header` (default): it trusts `X-Forwarded-User`, as Bitbucket does behind a header-trusting
 *   authenticator app;
 * - `access-token`: like a stock Bitbucket, it knows nothing of that header and takes only
 *   passwords and its own HTTP access tokens (`Authorization: Bearer …`, with their
 *   permissions), which it issues through its access-token REST API.
 */
export interface DemoUpstream {
  url: URL;
  mode: DemoUpstreamMode;
  /** Users whose pushes git accepted, in order (what the upstream saw as REMOTE_USER). */
  pushes: string[];
  /** The directory holding the bare repositories (`demo/repo.git`), for tests that inspect them. */
  root: string;
  /** `access-token` mode: the Bitbucket access tokens it issued (revoke one to see what clients get). */
  accessTokens?: AccessTokenRegistry;
  close(): Promise<void>;
}

export type DemoUpstreamMode = 'header' | 'access-token';

export interface DemoUpstreamOptions {
  mode?: DemoUpstreamMode;
  /**
   * A directory that keeps the repository and the access tokens (hashes only, 0600) across
   * restarts; made 0700 if missing. Default: a temp directory removed by `close()`.
   */
  root?: string;
}

export const DEMO_USER = 'demo';
export const DEMO_PASSWORD = 'demo';

const git = (args: string[], cwd: string) =>
  execFileSync(
    'git',
    ['-c', 'init.defaultBranch=main', '-c', 'user.name=Demo', '-c', 'user.email=demo@example.com', ...args],
    {
      cwd,
      stdio: 'ignore',
    },
  );

function createDemoRepository(root: string): void {
  if (existsSync(join(root, 'demo', 'repo.git', 'HEAD'))) return; // kept from an earlier start
  const work = join(root, 'seed');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(root, 'demo'), { recursive: true, mode: 0o700 });
  git(['init', '--bare', join(root, 'demo', 'repo.git')], root);
  git(['init', work], root);
  writeFileSync(join(work, 'README.md'), '# Demo repository\n\nServed through express-api-tokens.\n');
  git(['add', 'README.md'], work);
  git(['commit', '-m', 'Initial commit'], work);
  git(['push', join(root, 'demo', 'repo.git'), 'HEAD:main'], work);
  rmSync(work, { recursive: true, force: true });
}

/** Runs `git http-backend` as a CGI script, streaming both ways. */
function serveGit(
  root: string,
  pushes: string[],
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: string,
  user: string,
) {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: path,
    QUERY_STRING: query,
    REQUEST_METHOD: req.method,
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    REMOTE_USER: user,
    ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
    ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
    ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
  };
  const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
  req.pipe(cgi.stdin);
  let head = Buffer.alloc(0);
  let headersDone = false;
  cgi.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) {
      if (!res.write(chunk)) {
        cgi.stdout.pause();
        res.once('drain', () => cgi.stdout.resume());
      }
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n') >= 0 ? head.indexOf('\r\n\r\n') : head.indexOf('\n\n');
    if (end < 0) return;
    const separator = head[end] === 13 ? 4 : 2;
    let status = 200;
    for (const line of head.subarray(0, end).toString().split(/\r?\n/)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    headersDone = true;
    res.write(head.subarray(end + separator));
  });
  cgi.on('close', (code) => {
    if (code === 0 && path.endsWith('/git-receive-pack')) pushes.push(user);
    if (!headersDone) res.writeHead(502);
    res.end();
  });
}

/** git smart HTTP: pushes (receive-pack) need write access, everything else read access. */
function gitNeeds(url: URL): 'REPO_READ' | 'REPO_WRITE' {
  return url.pathname.endsWith('/git-receive-pack') || url.searchParams.get('service') === 'git-receive-pack'
    ? 'REPO_WRITE'
    : 'REPO_READ';
}

function askForCredentials(
  req: IncomingMessage,
  res: ServerResponse,
  message = 'Authentication required.',
): void {
  req.resume();
  res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="Demo Bitbucket"', 'Content-Type': 'text/plain' });
  res.end(`${message}\n`);
}

const DEMO_ACCOUNT = { name: DEMO_USER, slug: DEMO_USER, password: DEMO_PASSWORD };

/** The access tokens a kept root holds: read at start, written (0600, atomically) on each change. */
function keepAccessTokens(registry: AccessTokenRegistry, root: string): void {
  const file = join(root, 'access-tokens.json');
  if (existsSync(file))
    registry.restore(JSON.parse(readFileSync(file, 'utf8')) as Array<Omit<StandInToken, 'token'>>);
  registry.onChange = () => {
    writeFileSync(`${file}.new`, JSON.stringify(registry.toJSON()), { mode: 0o600 });
    renameSync(`${file}.new`, file);
  };
}

export async function startDemoUpstream(options: DemoUpstreamOptions = {}): Promise<DemoUpstream> {
  const mode = options.mode ?? 'header';
  const kept = options.root !== undefined;
  const root = options.root ?? mkdtempSync(join(tmpdir(), 'express-api-tokens-demo-'));
  mkdirSync(root, { recursive: true, mode: 0o700 });
  createDemoRepository(root);
  const pushes: string[] = [];
  const accessTokens = mode === 'access-token' ? new AccessTokenRegistry([DEMO_ACCOUNT]) : undefined;
  if (accessTokens !== undefined && kept) keepAccessTokens(accessTokens, root);

  /** Who the caller is: the trusted header (header mode), or a password or access token. */
  function callerOf(req: IncomingMessage): Principal | 'refused' | null {
    if (accessTokens !== undefined) return accessTokens.authenticate(req.headers.authorization);
    const user = req.headers['x-forwarded-user'];
    if (typeof user === 'string') return { user: { ...DEMO_ACCOUNT, name: user }, via: 'header' };
    // The demo login checks the demo password.
    const basic = req.headers.authorization?.startsWith('Basic ')
      ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString()
      : undefined;
    if (basic === undefined) return null;
    return basic === `${DEMO_USER}:${DEMO_PASSWORD}` ? { user: DEMO_ACCOUNT, via: 'password' } : 'refused';
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const caller = callerOf(req);
    if (url.pathname.startsWith('/scm/')) {
      // Like Bitbucket with anonymous access off: no identity, no repository. git then sends its credentials.
      if (caller === null) return askForCredentials(req, res);
      if (caller === 'refused') return askForCredentials(req, res, 'Authentication failed.');
      if (accessTokens !== undefined && !accessTokens.permits(caller, gitNeeds(url))) {
        req.resume();
        res.writeHead(403, { 'Content-Type': 'text/plain', 'X-AUSERNAME': caller.user.name });
        res.end('You are not permitted to access this resource.\n');
        return;
      }
      serveGit(
        root,
        pushes,
        req,
        res,
        url.pathname.slice('/scm'.length),
        url.search.slice(1),
        caller.user.name,
      );
      return;
    }
    if (accessTokens !== undefined && url.pathname.startsWith('/rest/access-tokens/')) {
      void accessTokens.handle(req, res, url.pathname, caller);
      return;
    }
    req.resume();
    if (caller === 'refused') {
      authenticationFailed(res);
      return;
    }
    const user = caller?.user.name;
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, {
        'Content-Type': 'application/json',
        ...(user === undefined ? {} : { 'X-AUSERNAME': user }),
      });
      res.end(JSON.stringify(body));
    };
    // The user lookups the login and the access-token mode make.
    const users = /^\/rest\/api\/(?:1\.0|latest)\/users(?:\/([^/]+))?$/.exec(url.pathname);
    if (users) {
      if (caller === null) return authenticationFailed(res);
      const wanted =
        users[1] === undefined ? (url.searchParams.get('filter') ?? '') : decodeURIComponent(users[1]);
      const demo = {
        name: DEMO_USER,
        slug: DEMO_USER,
        id: 1,
        displayName: 'Demo User',
        active: true,
        type: 'NORMAL',
      };
      const found = DEMO_USER.startsWith(wanted.toLowerCase());
      if (users[1] !== undefined)
        return found && wanted === DEMO_USER
          ? answer(200, demo)
          : answer(404, { errors: [{ message: 'No such user' }] });
      return answer(200, {
        size: found ? 1 : 0,
        limit: 100,
        isLastPage: true,
        start: 0,
        values: found ? [demo] : [],
      });
    }
    if (/^\/rest\/api\/(?:1\.0|latest)\/application-properties$/.test(url.pathname))
      return answer(200, { version: '9.4.0', displayName: 'Bitbucket (demo stand-in)' });
    if (url.pathname === '/rest/demo/pushes') return answer(200, { pushes });
    if (accessTokens !== undefined) {
      if (caller === null) return authenticationFailed(res);
      // Administration needs an admin token; reads a read token; anything else a write token.
      const needed = url.pathname.includes('/admin/')
        ? 'PROJECT_ADMIN'
        : ['GET', 'HEAD', 'OPTIONS'].includes(req.method ?? 'GET')
          ? 'REPO_READ'
          : 'REPO_WRITE';
      if (!accessTokens.permits(caller, needed)) return notPermitted(res, caller.user.name);
    }
    answer(200, {
      upstream: 'demo Bitbucket stand-in',
      mode,
      user: user ?? null,
      // How it knew the caller: `header` (X-Forwarded-User), `password` or `token`.
      via: caller?.via ?? null,
      method: req.method,
      path: url.pathname,
      receivedAuthorization: req.headers.authorization !== undefined,
      // The scheme of the Authorization header it got (never its value), or null.
      authorizationScheme: req.headers.authorization?.split(' ')[0] ?? null,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}`),
    mode,
    pushes,
    root,
    ...(accessTokens === undefined ? {} : { accessTokens }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (!kept) rmSync(root, { recursive: true, force: true });
    },
  };
}
