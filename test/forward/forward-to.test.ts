import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type RequestListener,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { forwardTo } from '../../lib/forward/index.js';
import { EXPRESS_VERSIONS } from '../support/apps.js';

interface Running {
  url: string;
  close(): Promise<void>;
}

const running: Running[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

async function listen(handler: RequestListener): Promise<Running> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const handle = {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  running.push(handle);
  return handle;
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bytes: number;
}

/** An upstream that answers with what it received (method, path, headers, body size). */
async function echoUpstream(onRequest: (seen: Seen) => void = () => {}): Promise<Running> {
  return listen((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      const seen = { method: req.method!, url: req.url!, headers: req.headers, bytes };
      onRequest(seen);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(seen));
    });
  });
}

interface Answer {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain node:http client, so every header (Connection included) is exactly what we set. */
function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: false });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          statusMessage: res.statusMessage!,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.end(options.body);
  });
}

const seenBy = (answer: Answer) => JSON.parse(answer.body) as Seen;

describe.each(EXPRESS_VERSIONS)('forwardTo on %s', (_name, makeApp) => {
  it('forwards the full request path whatever the mount path', async () => {
    const upstream = await echoUpstream();
    const app = makeApp();
    app.use(['/rest', '/scm'], forwardTo(upstream.url));
    const proxy = await listen(app);

    const rest = seenBy(await send(`${proxy.url}/rest/api/1.0/projects?start=25&limit=25`));
    expect(rest.url).toBe('/rest/api/1.0/projects?start=25&limit=25');
    const scm = seenBy(await send(`${proxy.url}/scm/proj/repo.git/info/refs?service=git-upload-pack`));
    expect(scm.url).toBe('/scm/proj/repo.git/info/refs?service=git-upload-pack');
  });

  it('forwards the full path from inside a router mounted under a prefix', async () => {
    const upstream = await echoUpstream();
    const app = makeApp();
    const inner = makeApp();
    inner.use('/rest', forwardTo(upstream.url));
    app.use('/bitbucket', inner);
    const proxy = await listen(app);

    const seen = seenBy(await send(`${proxy.url}/bitbucket/rest/api/1.0/users`));
    expect(seen.url).toBe('/bitbucket/rest/api/1.0/users');
  });

  it('puts the upstream’s own path prefix in front', async () => {
    const upstream = await echoUpstream();
    const app = makeApp();
    app.use('/rest', forwardTo(new URL(`${upstream.url}/bitbucket/`)));
    const proxy = await listen(app);

    const seen = seenBy(await send(`${proxy.url}/rest/api/1.0/projects`));
    expect(seen.url).toBe('/bitbucket/rest/api/1.0/projects');
  });
});

describe('forwardTo headers', () => {
  it('removes hop-by-hop request headers, including every header named in Connection', async () => {
    const upstream = await echoUpstream();
    const proxy = await listen((await import('express')).default().use(forwardTo(upstream.url)));

    const seen = seenBy(
      await send(`${proxy.url}/rest/x`, {
        headers: {
          Connection: 'keep-alive, X-Foo, x-bar',
          'X-Foo': 'connection-only',
          'X-Bar': 'connection-only',
          'Keep-Alive': 'timeout=5',
          'Proxy-Authorization': 'Basic cHJveHk6c2VjcmV0',
          'Proxy-Connection': 'keep-alive',
          TE: 'trailers',
          'X-End-To-End': 'kept',
          'X-Forwarded-User': 'alice',
        },
      }),
    );
    for (const name of ['x-foo', 'x-bar', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te'])
      expect(seen.headers[name], name).toBeUndefined();
    expect(seen.headers['x-end-to-end']).toBe('kept');
    expect(seen.headers['x-forwarded-user']).toBe('alice');
  });

  it('removes hop-by-hop response headers, including every header named in Connection', async () => {
    const upstream = await listen((_req, res) => {
      res.setHeader('Connection', 'keep-alive, X-Hop');
      res.setHeader('X-Hop', 'upstream-connection-only');
      res.setHeader('Proxy-Authenticate', 'Basic realm="upstream proxy"');
      res.setHeader('Trailer', 'Expires');
      res.setHeader('X-End-To-End', 'kept');
      res.setHeader('Set-Cookie', ['a=1; HttpOnly', 'b=2; HttpOnly']);
      res.statusMessage = 'Very Created';
      res.statusCode = 201;
      res.end('done');
    });
    const proxy = await listen((await import('express')).default().use(forwardTo(upstream.url)));

    const answer = await send(`${proxy.url}/rest/x`);
    expect(answer.status).toBe(201);
    expect(answer.statusMessage).toBe('Very Created');
    expect(answer.body).toBe('done');
    expect(answer.headers['x-hop']).toBeUndefined();
    expect(answer.headers['proxy-authenticate']).toBeUndefined();
    expect(answer.headers.trailer).toBeUndefined();
    expect(answer.headers['x-end-to-end']).toBe('kept');
    expect(answer.headers['set-cookie']).toEqual(['a=1; HttpOnly', 'b=2; HttpOnly']);
  });

  it('sends the upstream’s Host and sets X-Forwarded-For, -Host and -Proto the standard way', async () => {
    const upstream = await echoUpstream();
    const proxy = await listen((await import('express')).default().use(forwardTo(upstream.url)));

    const first = seenBy(await send(`${proxy.url}/rest/x`, { headers: { Host: 'git.example.com' } }));
    expect(first.headers.host).toBe(new URL(upstream.url).host);
    expect(first.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(first.headers['x-forwarded-host']).toBe('git.example.com');
    expect(first.headers['x-forwarded-proto']).toBe('http');

    // Earlier hops are kept and the peer appended; an untrusted peer cannot set -Host or -Proto.
    const second = seenBy(
      await send(`${proxy.url}/rest/x`, {
        headers: {
          Host: 'git.example.com',
          'X-Forwarded-For': '203.0.113.9, 198.51.100.2',
          'X-Forwarded-Host': 'evil.example',
          'X-Forwarded-Proto': 'https',
        },
      }),
    );
    expect(second.headers['x-forwarded-for']).toBe('203.0.113.9, 198.51.100.2, 127.0.0.1');
    expect(second.headers['x-forwarded-host']).toBe('git.example.com');
    expect(second.headers['x-forwarded-proto']).toBe('http');
  });

  it('keeps X-Forwarded-Host and -Proto from a peer Express trusts', async () => {
    const upstream = await echoUpstream();
    const app = (await import('express')).default();
    app.set('trust proxy', 'loopback');
    app.use(forwardTo(upstream.url));
    const proxy = await listen(app);

    const seen = seenBy(
      await send(`${proxy.url}/rest/x`, {
        headers: {
          Host: 'internal:8080',
          'X-Forwarded-Host': 'git.example.com, internal-lb',
          'X-Forwarded-Proto': 'https',
        },
      }),
    );
    expect(seen.headers['x-forwarded-host']).toBe('git.example.com');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
  });
});

describe('forwardTo streaming', () => {
  /** Writes `chunk` until the socket pushes back for `stallMs`; returns how many bytes went out. */
  function writeUntilStalled(
    req: ReturnType<typeof httpRequest>,
    chunk: Buffer,
    limit: number,
    stallMs = 300,
  ): Promise<number> {
    return new Promise((resolve, reject) => {
      let written = 0;
      req.on('error', reject);
      const pump = () => {
        while (written < limit) {
          written += chunk.length;
          if (!req.write(chunk)) {
            const stalled = setTimeout(() => resolve(written), stallMs);
            req.once('drain', () => {
              clearTimeout(stalled);
              pump();
            });
            return;
          }
        }
        resolve(written);
      };
      pump();
    });
  }

  it('never buffers a request body: an upstream that stops reading stops the client', async () => {
    let upstreamReq: IncomingMessage | undefined;
    const upstream = await listen((req) => {
      upstreamReq = req;
      req.pause();
    });
    const proxy = await listen((await import('express')).default().use(forwardTo(upstream.url)));

    const req = httpRequest(`${proxy.url}/scm/p/r.git/git-receive-pack`, { method: 'POST', agent: false });
    const written = await writeUntilStalled(req, Buffer.alloc(64 * 1024, 1), 512 * 1024 * 1024);
    // Only socket buffers on two hops hold data; a buffering proxy would take all 512 MiB.
    expect(written).toBeLessThan(64 * 1024 * 1024);
    expect(upstreamReq).toBeDefined();
    req.destroy();
  });

  it('never buffers a response body: a client that stops reading stops the upstream', async () => {
    let upstreamWritten = 0;
    let stalled!: () => void;
    const upstreamStalled = new Promise<void>((resolve) => {
      stalled = resolve;
    });
    const upstream = await listen((_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 2);
      const pump = () => {
        while (upstreamWritten < 512 * 1024 * 1024) {
          upstreamWritten += chunk.length;
          if (!res.write(chunk)) {
            const timer = setTimeout(stalled, 300);
            res.once('drain', () => {
              clearTimeout(timer);
              pump();
            });
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const proxy = await listen((await import('express')).default().use(forwardTo(upstream.url)));

    const req = httpRequest(`${proxy.url}/rest/big`, { agent: false });
    req.on('response', (res) => res.pause());
    req.end();
    await upstreamStalled;
    expect(upstreamWritten).toBeLessThan(64 * 1024 * 1024);
    req.destroy();
  });

  it('passes a 256 MiB push through byte for byte with flat memory', async () => {
    const upstream = await echoUpstream();
    const proxy = await listen((await import('express')).default().use(forwardTo(upstream.url)));
    const size = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(256 * 1024, 7);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);

    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = httpRequest(`${proxy.url}/scm/p/r.git/git-receive-pack`, {
        method: 'POST',
        agent: false,
        headers: { 'Content-Length': String(size) },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            statusMessage: '',
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      });
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    clearInterval(sampler);

    expect(answer.status).toBe(200);
    expect(seenBy(answer).bytes).toBe(size);
    expect(peak - before).toBeLessThan(96 * 1024 * 1024);
  });
});

describe('forwardTo failures', () => {
  it('answers 502 in Bitbucket’s error shape when the upstream is unreachable', async () => {
    const gone = await listen(() => {});
    await gone.close();
    running.splice(running.indexOf(gone), 1);
    const proxy = await listen((await import('express')).default().use(forwardTo(gone.url)));

    for (const method of ['GET', 'POST']) {
      const answer = await send(`${proxy.url}/rest/x`, {
        method,
        ...(method === 'POST' ? { body: 'x'.repeat(100_000) } : {}),
      });
      expect(answer.status).toBe(502);
      expect(JSON.parse(answer.body)).toEqual({
        errors: [
          {
            context: null,
            message: 'Bitbucket is unreachable. Try again later.',
            exceptionName: null,
            code: 'UPSTREAM_UNREACHABLE',
          },
        ],
      });
    }
  });

  it('answers 502 to a push still under way, instead of dropping the client’s connection', async () => {
    const gone = await listen(() => {});
    await gone.close();
    running.splice(running.indexOf(gone), 1);
    const proxy = await listen((await import('express')).default().use(forwardTo(gone.url)));

    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${proxy.url}/scm/p/r.git/git-receive-pack`, {
        method: 'POST',
        agent: false,
        headers: { 'Content-Length': String(64 * 1024 * 1024) },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
        req.destroy();
      });
      req.write(Buffer.alloc(1024 * 1024));
    });
    expect(status).toBe(502);
  });

  it('answers 504 when the upstream stays silent past timeoutMs', async () => {
    const upstream = await listen(() => {});
    const proxy = await listen(
      (await import('express')).default().use(forwardTo(upstream.url, { timeoutMs: 200 })),
    );

    const started = Date.now();
    const answer = await send(`${proxy.url}/rest/x`);
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.body).errors[0].code).toBe('UPSTREAM_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('does not cut off a slow push while its bytes flow, nor a slow answer', async () => {
    const upstream = await listen((req, res) => {
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      req.on('end', async () => {
        // Fifteen parts 100 ms apart: an answer longer than the idle timeout, never idle that long.
        for (let i = 0; i < 15; i++) {
          res.write(`part ${i};`);
          await sleep(100);
        }
        res.end(`bytes ${bytes}`);
      });
    });
    const proxy = await listen(
      (await import('express')).default().use(forwardTo(upstream.url, { timeoutMs: 1_000 })),
    );

    const answer = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${proxy.url}/scm/p/r.git/git-receive-pack`, { method: 'POST', agent: false });
      req.on('error', reject);
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve(body));
        res.on('error', reject);
      });
      (async () => {
        // Thirty chunks 100 ms apart: three seconds in all, three times the idle timeout (which
        // leaves a busy machine's event loop room to lag without reading as idle).
        for (let i = 0; i < 30; i++) {
          req.write('y'.repeat(1000));
          await sleep(100);
        }
        req.end();
      })();
    });
    expect(answer).toBe(`${Array.from({ length: 15 }, (_, i) => `part ${i};`).join('')}bytes 30000`);
  });

  it('cuts the client’s answer off when the upstream dies mid-answer, so it never looks complete', async () => {
    const upstream = await listen((_req, res) => {
      res.writeHead(200, { 'Content-Length': '1000' });
      res.write('x'.repeat(10));
      setTimeout(() => res.destroy(), 50);
    });
    const proxy = await listen((await import('express')).default().use(forwardTo(upstream.url)));

    await expect(send(`${proxy.url}/rest/x`)).rejects.toThrow();
  });

  it('closes the upstream request when the client goes away', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => {
      upstreamClosed = resolve;
    });
    let arrived!: () => void;
    const arrivedUpstream = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const upstream = await listen((req) => {
      req.socket.on('close', upstreamClosed);
      arrived();
    });
    const proxy = await listen((await import('express')).default().use(forwardTo(upstream.url)));

    const req = httpRequest(`${proxy.url}/rest/slow`, { agent: false });
    req.on('error', () => {});
    req.end();
    await arrivedUpstream;
    req.destroy();
    await expect(Promise.race([closed.then(() => 'closed'), sleep(2_000, 'still open')])).resolves.toBe(
      'closed',
    );
  });
});

describe('forwardTo options', () => {
  it('refuses what is not an http(s) URL, naming the option', () => {
    expect(() => forwardTo('ftp://bitbucket.example.com')).toThrow(
      /`upstream` must be an http: or https: URL/,
    );
    expect(() => forwardTo('bitbucket.example.com')).toThrow(/`upstream` must be an http: or https: URL/);
    expect(() => forwardTo('https://user:pw@bitbucket.example.com')).toThrow(/`upstream` must not carry/);
    expect(() => forwardTo('https://bitbucket.example.com/?a=1')).toThrow(/`upstream` must not have a query/);
  });

  it('refuses bad and unknown options, suggesting the right name', () => {
    const url = 'http://127.0.0.1:7990';
    expect(() => forwardTo(url, { timeoutms: 5 } as never)).toThrow(
      'Unknown option `timeoutms`; did you mean `timeoutMs`?',
    );
    expect(() => forwardTo(url, { timeoutMs: 0 })).toThrow('`timeoutMs` must be an integer from 1 to');
    expect(() => forwardTo(url, { timeoutMs: Number.NaN })).toThrow('`timeoutMs`');
    expect(() => forwardTo(url, { agent: {} as never })).toThrow('`agent` must be an http.Agent');
  });

  it('says so when mounted without the call', () => {
    expect(() =>
      (forwardTo as unknown as (...args: unknown[]) => unknown)({ headers: {} }, {}, () => {}),
    ).toThrow('Mount `forwardTo(url)` (called), not `forwardTo`');
  });
});
