import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A local stand-in for Bitbucket, for the demo: it serves one git repository through the real
 * `git http-backend` under `/scm/demo/repo.git`, answers Bitbucket's user lookup for the demo
 * login (`demo` / `demo`), lists accepted pushes on `/rest/demo/pushes`, and on any other `/rest`
 * path echoes the identity the proxy forwarded.
 */
export interface DemoUpstream {
  url: URL;
  /** Users whose pushes git accepted, in order (what the upstream saw as REMOTE_USER). */
  pushes: string[];
  close(): Promise<void>;
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
  const work = join(root, 'seed');
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
) {
  const user = req.headers['x-forwarded-user'];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: path,
    QUERY_STRING: query,
    REQUEST_METHOD: req.method,
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    ...(typeof user === 'string' ? { REMOTE_USER: user } : {}),
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
    if (code === 0 && path.endsWith('/git-receive-pack') && typeof user === 'string') pushes.push(user);
    if (!headersDone) res.writeHead(502);
    res.end();
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

export async function startDemoUpstream(): Promise<DemoUpstream> {
  const root = mkdtempSync(join(tmpdir(), 'express-api-tokens-demo-'));
  createDemoRepository(root);
  const pushes: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname.startsWith('/scm/')) {
      // Like Bitbucket with anonymous access off: no identity, no repository. git then sends its credentials.
      if (req.headers['x-forwarded-user'] === undefined) {
        req.resume();
        res.writeHead(401, {
          'WWW-Authenticate': 'Basic realm="Demo Bitbucket"',
          'Content-Type': 'text/plain',
        });
        res.end('Authentication required.\n');
        return;
      }
      serveGit(root, pushes, req, res, url.pathname.slice('/scm'.length), url.search.slice(1));
      return;
    }
    if (url.pathname === '/rest/api/1.0/users') {
      // The password check of the logins (`bitbucketPasswordVerifier`): only demo / demo is accepted.
      req.resume();
      const [user, password] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':');
      if (user !== DEMO_USER || password !== DEMO_PASSWORD) {
        json(res, 401, { errors: [{ message: 'Authentication failed.' }] });
        return;
      }
      res.setHeader('X-AUSERNAME', DEMO_USER);
      json(res, 200, {
        size: 1,
        limit: 100,
        isLastPage: true,
        start: 0,
        values: [
          { name: DEMO_USER, slug: DEMO_USER, id: 1, displayName: 'Demo User', active: true, type: 'NORMAL' },
        ],
      });
      return;
    }
    const login = /^\/rest\/api\/1\.0\/users\/([^/]+)$/.exec(url.pathname);
    if (login && req.headers.authorization?.startsWith('Basic ')) {
      const [user, password] = Buffer.from(req.headers.authorization.slice(6), 'base64')
        .toString()
        .split(':');
      if (user === DEMO_USER && password === DEMO_PASSWORD && decodeURIComponent(login[1]!) === DEMO_USER) {
        json(res, 200, {
          name: DEMO_USER,
          slug: DEMO_USER,
          id: 1,
          displayName: 'Demo User',
          active: true,
          type: 'NORMAL',
        });
      } else {
        json(res, 401, { errors: [{ message: 'Authentication failed.' }] });
      }
      return;
    }
    req.resume();
    if (url.pathname === '/rest/demo/pushes') {
      json(res, 200, { pushes });
      return;
    }
    json(res, 200, {
      upstream: 'demo Bitbucket stand-in',
      user: req.headers['x-forwarded-user'] ?? null,
      method: req.method,
      path: url.pathname,
      receivedAuthorization: req.headers.authorization !== undefined,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}`),
    pushes,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
