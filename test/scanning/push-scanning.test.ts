import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { forwardTo } from '../../lib/forward/index.js';
import { createTokenGate, type TokenGateOptions } from '../../lib/gate/create-token-gate.js';
import { PackScanner } from '../../lib/scanning/pack-scanner.js';
import { TokenMatcher } from '../../lib/scanning/token-matcher.js';
import { generateToken } from '../../lib/tokens/format.js';
import { openRedisStore } from '../support/redis-store.js';

const ZERO = '0'.repeat(40);
const pkt = (line: string) => `${(line.length + 4).toString(16).padStart(4, '0')}${line}`;

/** A repository made by git, and the body git would send to push its HEAD to an empty `main`. */
function pushBody(
  files: Record<string, string>,
  message = 'commit',
  capabilities = 'report-status side-band-64k',
) {
  const dir = mkdtempSync(join(tmpdir(), 'eat-pack-'));
  try {
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=x', '-c', 'user.email=x@example.com', ...args], { cwd: dir });
    git('init', '-q');
    for (const [path, content] of Object.entries(files)) {
      execFileSync('mkdir', ['-p', join(dir, path, '..')]);
      writeFileSync(join(dir, path), content);
    }
    git('add', '-A');
    git('commit', '-q', '--allow-empty', '-m', message);
    const head = git('rev-parse', 'HEAD').toString().trim();
    const pack = execFileSync('git', ['pack-objects', '--stdout', '--revs', '-q'], {
      cwd: dir,
      input: 'HEAD\n',
    });
    const commands = Buffer.from(
      `${pkt(`${ZERO} ${head} refs/heads/main\0 ${capabilities} agent=git/2.39\n`)}0000`,
    );
    return Buffer.concat([commands, pack]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Feeds a scanner in chunks of `size` and answers the tokens it found. */
async function scanInChunks(body: Buffer, size: number, prefix = 'bbt') {
  const scanner = new PackScanner(prefix);
  scanner.on('error', () => {}); // seen through the callbacks below
  for (let at = 0; at < body.length; at += size)
    await new Promise<void>((resolve, reject) =>
      scanner.write(body.subarray(at, at + size), (err) => (err ? reject(err) : resolve())),
    );
  await new Promise<void>((resolve, reject) => {
    scanner.once('error', reject);
    scanner.end(() => resolve());
  });
  return [...scanner.findings.keys()].map((token) => ({ token, place: scanner.placeOf(token) }));
}

describe('TokenMatcher', () => {
  it('finds a token split at every possible chunk boundary, and nothing with a wrong checksum', () => {
    const { token } = generateToken('bbt');
    const wrong = `${token.slice(0, -1)}${token.at(-1) === 'a' ? 'b' : 'a'}`;
    const text = Buffer.from(`x=${wrong};y="${token}"\nbbt_bbt_${token}`);
    for (let split = 0; split <= text.length; split++) {
      const found: string[] = [];
      const matcher = new TokenMatcher('bbt', (t) => found.push(t));
      matcher.write(text.subarray(0, split));
      matcher.write(text.subarray(split));
      expect(found).toEqual([token, token]);
    }
    const found: string[] = [];
    const matcher = new TokenMatcher('bbt', (t) => found.push(t));
    for (const byte of text) matcher.write(Buffer.from([byte]));
    expect(found).toEqual([token, token]);
  });
});

describe('PackScanner', () => {
  it('finds tokens in files (with their paths) and commit messages, whatever the chunk sizes', async () => {
    const inFile = generateToken('bbt').token;
    const inMessage = generateToken('bbt').token;
    const body = pushBody(
      {
        'README.md': '# readme\n',
        'config/deploy/prod.env': `A=1\nTOKEN=${inFile}\n`,
        'big.bin': 'z'.repeat(3_000_000),
      },
      `release\n\nused ${inMessage}`,
    );
    for (const size of [1, 13, 4096, 65_536, body.length]) {
      const found = await scanInChunks(body, size);
      expect(found).toEqual([
        { token: inMessage, place: { kind: 'commit', oid: expect.stringMatching(/^[0-9a-f]{40}$/) } },
        { token: inFile, place: { kind: 'blob', oid: expect.any(String), path: 'config/deploy/prod.env' } },
      ]);
    }
  }, 60_000);

  it('fails on a pack that is cut short or malformed (the push is then refused)', async () => {
    const body = pushBody({ 'a.txt': 'hello\n' });
    await expect(scanInChunks(body.subarray(0, body.length - 30), 64)).rejects.toThrow(
      /before its pack was complete|size/,
    );
    const broken = Buffer.from(body);
    broken.write('PACX', body.indexOf('PACK'));
    await expect(scanInChunks(broken, 64)).rejects.toThrow(/no pack/);
  });
});

describe('push protection on the request path', () => {
  let upstream: Server;
  let upstreamUrl: string;
  const received: Array<{ path: string; sha: string; encoding: string | undefined }> = [];
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eat-spool-'));
    // The upstream: records what reached it, byte for byte.
    upstream = createServer((req, res) => {
      const hash = createHash('sha256');
      req.on('data', (chunk: Buffer) => hash.update(chunk));
      req.on('end', () => {
        received.push({ path: req.url!, sha: hash.digest('hex'), encoding: req.headers['content-encoding'] });
        res.writeHead(200, { 'Content-Type': 'application/x-git-receive-pack-result' });
        res.end(`${pkt('unpack ok\n')}0000`);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => upstream.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const proxyWith = (options: TokenGateOptions = {}) => {
    const events: AuditEvent[] = [];
    const gate = createTokenGate({ onEvent: (e) => events.push(e), ...options });
    const app = express();
    app.use(['/scm', '/git', '/SCM'], gate.protect(), forwardTo(upstreamUrl));
    return { gate, app, events };
  };
  const auth = (token: string) => `Bearer ${token}`;
  /** supertest leaves unknown types unread: read the report as bytes. */
  const post = (app: express.Express, path: string, token: string) =>
    request(app)
      .post(path)
      .set('Authorization', auth(token))
      .set('Content-Type', 'application/x-git-receive-pack-request')
      .buffer(true)
      .parse((res, callback) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => callback(null, Buffer.concat(chunks)));
      });
  const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
  /** The pushes waited on disk, and are gone once forwarded or refused. */
  const spoolIsEmpty = async () => {
    for (let i = 0; i < 50 && readdirSync(dir).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(dir).map((f) => `${f} ${statSync(join(dir, f)).size}`)).toEqual([]);
  };

  it('refuses a gzip-encoded push holding a live token; nothing reaches the upstream', async () => {
    const { gate, app, events } = proxyWith({ pushProtection: { tempDir: dir } });
    const pusher = await gate.tokens.create({ user: 'ann', name: 'push', scope: 'write' });
    const leaked = await gate.tokens.create({ user: 'ann', name: 'leaky', scope: 'read' });
    const before = received.length;
    const res = await post(app, '/scm/proj/repo.git/git-receive-pack', pusher.token)
      .set('Content-Encoding', 'gzip')
      .send(gzipSync(pushBody({ 'src/app.ts': `const t = '${leaked.token}';\n` })));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-git-receive-pack-result');
    const text = res.body.toString('latin1');
    expect(text).toContain('ng refs/heads/main push contains a live API token\n');
    expect(text).toContain(`\x02  token "leaky" (id ${leaked.info.id}, owner ann) in src/app.ts\n`);
    expect(text).not.toContain(leaked.token);
    expect(received.length).toBe(before);
    expect(await gate.tokens.verify(leaked.token)).toBeNull();
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'token.leaked',
        tokenId: leaked.info.id,
        pushedBy: 'ann',
        revoked: true,
      }),
    );
    await gate.close();
  });

  it('forwards a clean push byte for byte, gzip-encoded or not', async () => {
    const { gate, app } = proxyWith({ pushProtection: { tempDir: dir } });
    const pusher = await gate.tokens.create({ user: 'ann', name: 'push', scope: 'write' });
    const revoked = await gate.tokens.create({ user: 'ann', name: 'old', scope: 'read' });
    await gate.tokens.revoke(revoked.info.id);
    const body = pushBody({ 'notes.txt': `old: ${revoked.token}\n`, 'big.bin': 'q'.repeat(2_000_000) });
    for (const [encoding, payload] of [
      [undefined, body],
      ['gzip', gzipSync(body)],
    ] as const) {
      const req = post(app, '/scm/proj/repo.git/git-receive-pack', pusher.token);
      if (encoding !== undefined) req.set('Content-Encoding', encoding);
      const res = await req.send(payload);
      expect(res.status).toBe(200);
      expect(received.at(-1)).toEqual({
        path: '/scm/proj/repo.git/git-receive-pack',
        sha: sha(payload),
        encoding,
      });
    }
    await spoolIsEmpty();
    await gate.close();
  });

  it('catches every spelling of a push path, under every git prefix', async () => {
    const { gate, app } = proxyWith({ gitPrefixes: ['/scm/', '/git/'], pushProtection: { revoke: false } });
    const pusher = await gate.tokens.create({ user: 'ann', name: 'push', scope: 'write' });
    const leaked = await gate.tokens.create({ user: 'ann', name: 'leaky', scope: 'read' });
    const body = pushBody({ 'a.txt': leaked.token });
    const before = received.length;
    for (const path of [
      '/scm/proj/repo.git/git-receive-pack',
      '/git/proj/repo/git-receive-pack',
      '/SCM/proj/repo.git/GIT-RECEIVE-PACK',
      '/scm/proj/repo.git/git%2Dreceive-pack',
      '/scm/proj/repo.git/git-receive-pack/',
      '/scm//proj/repo.git/git-receive-pack',
    ]) {
      const res = await post(app, path, pusher.token).send(body);
      expect(res.body.toString('latin1'), path).toContain('push contains a live API token');
    }
    // A push under any path is judged by its content type too.
    const typed = await post(app, '/scm/proj/repo.git/something-else', pusher.token).send(body);
    expect(typed.body.toString('latin1')).toContain('push contains a live API token');
    expect(received.length).toBe(before);
    // `revoke: false` only refuses.
    expect(await gate.tokens.verify(leaked.token)).not.toBeNull();
    await gate.close();
  });

  it('answers without side-band when git did not ask for it, and refuses what it cannot read', async () => {
    const { gate, app } = proxyWith();
    const pusher = await gate.tokens.create({ user: 'ann', name: 'push', scope: 'write' });
    const leaked = await gate.tokens.create({ user: 'ann', name: 'leaky', scope: 'read' });
    const plain = await post(app, '/scm/proj/repo.git/git-receive-pack', pusher.token).send(
      pushBody({ 'a.txt': leaked.token }, 'm', 'report-status'),
    );
    expect(plain.body.toString('latin1')).toBe(
      `${pkt('unpack ok\n')}${pkt('ng refs/heads/main push contains a live API token\n')}0000`,
    );
    const cut = pushBody({ 'a.txt': 'fine' });
    const before = received.length;
    const broken = await post(app, '/scm/proj/repo.git/git-receive-pack', pusher.token).send(
      cut.subarray(0, cut.length - 25),
    );
    expect(broken.body.toString('latin1')).toContain('push could not be checked for API tokens');
    const encoded = await post(app, '/scm/proj/repo.git/git-receive-pack', pusher.token)
      .set('Content-Encoding', 'br')
      .send(cut);
    expect(encoded.status).toBe(400);
    expect(encoded.body.toString('latin1')).toContain('Content-Encoding br cannot be read');
    expect(received.length).toBe(before);
    await gate.close();
  });

  it('works with another streaming proxy: fetch() forwarding req as a web stream', async () => {
    const gate = createTokenGate({ pushProtection: { tempDir: dir } });
    const app = express();
    app.use('/scm', gate.protect(), async (req, res) => {
      const answer = await fetch(`${upstreamUrl}${req.originalUrl}`, {
        method: 'POST',
        headers: { 'content-type': String(req.headers['content-type']) },
        body: Readable.toWeb(req) as ReadableStream,
        duplex: 'half',
      } as RequestInit);
      res.status(answer.status).type(answer.headers.get('content-type') ?? 'text/plain');
      res.end(Buffer.from(await answer.arrayBuffer()));
    });
    const pusher = await gate.tokens.create({ user: 'ann', name: 'push', scope: 'write' });
    const leaked = await gate.tokens.create({ user: 'ann', name: 'leaky', scope: 'read' });
    const clean = pushBody({ 'big.bin': 'r'.repeat(1_500_000), 'a.txt': 'nothing here' });
    const passed = await post(app, '/scm/proj/repo.git/git-receive-pack', pusher.token).send(clean);
    expect(passed.status).toBe(200);
    expect(received.at(-1)!.sha).toBe(sha(clean));
    const before = received.length;
    const refused = await post(app, '/scm/proj/repo.git/git-receive-pack', pusher.token).send(
      pushBody({ 'a.txt': leaked.token, 'big.bin': 'r'.repeat(1_500_000) }),
    );
    expect(refused.body.toString('latin1')).toContain('push contains a live API token');
    expect(received.length).toBe(before);
    await spoolIsEmpty();
    await gate.close();
  });

  it('fails closed: a push whose token cannot be looked up (store down) is refused', async () => {
    const { store, redis, keyPrefix, cleanup } = await openRedisStore(
      new Redis(inject('redisUrl'), { enableOfflineQueue: false, maxRetriesPerRequest: 0 }),
    );
    // Anonymous pushes pass the gate (`anonymous: 'pass'`) without the store; only the scan needs it.
    const { gate, app } = proxyWith({ store, storeTimeoutMs: 300 });
    const leaked = await gate.tokens.create({ user: 'ann', name: 'leaky', scope: 'read' });
    const body = pushBody({ 'a.txt': leaked.token });
    redis.disconnect();
    const before = received.length;
    const res = await request(app)
      .post('/scm/proj/repo.git/git-receive-pack')
      .set('Content-Type', 'application/x-git-receive-pack-request')
      .buffer(true)
      .parse((r, callback) => {
        const chunks: Buffer[] = [];
        r.on('data', (chunk: Buffer) => chunks.push(chunk));
        r.on('end', () => callback(null, Buffer.concat(chunks)));
      })
      .send(body);
    expect(res.body.toString('latin1')).toContain(
      'ng refs/heads/main push could not be checked for API tokens',
    );
    expect(res.body.toString('latin1')).toContain('The token store is unavailable');
    expect(received.length).toBe(before);
    await gate.close();
    await cleanup().catch(() => {}); // its own connection is the one cut: remove the keys with another
    const fresh = new Redis(inject('redisUrl'));
    const keys = await fresh.keys(`${keyPrefix}:*`);
    if (keys.length > 0) await fresh.del(...keys);
    fresh.disconnect();
  });

  it('checks its options at startup, naming them', () => {
    expect(() => createTokenGate({ pushProtection: { tempDir: '/nonexistent/spool' } })).toThrow(
      /`pushProtection.tempDir` must be a writable directory/,
    );
    expect(() => createTokenGate({ pushProtection: { revok: false } as never })).toThrow(
      /Unknown option `pushProtection.revok`/,
    );
    expect(() => createTokenGate({ pushProtection: true as never })).toThrow(/pushProtection/);
  });

  it('lets everything through with pushProtection: false', async () => {
    const { gate, app } = proxyWith({ pushProtection: false });
    const pusher = await gate.tokens.create({ user: 'ann', name: 'push', scope: 'write' });
    const body = pushBody({ 'a.txt': pusher.token });
    const res = await post(app, '/scm/proj/repo.git/git-receive-pack', pusher.token).send(body);
    expect(res.status).toBe(200);
    expect(received.at(-1)!.sha).toBe(sha(body));
    await gate.close();
  });
});
