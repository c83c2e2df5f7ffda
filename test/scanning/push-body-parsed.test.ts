import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';

const ZERO = '0'.repeat(40);
const pkt = (line: string) => `${(Buffer.byteLength(line) + 4).toString(16).padStart(4, '0')}${line}`;

/** The body git sends to push a commit holding `content` in a.txt to an empty `main`. */
function pushOf(content: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'eat-parsed-'));
  try {
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=x', '-c', 'user.email=x@example.com', ...args], { cwd: dir });
    git('init', '-q');
    writeFileSync(join(dir, 'a.txt'), content);
    git('add', '-A');
    git('commit', '-q', '-m', 'commit');
    const head = git('rev-parse', 'HEAD').toString().trim();
    const pack = execFileSync('git', ['pack-objects', '--stdout', '--revs', '-q'], {
      cwd: dir,
      input: 'HEAD\n',
    });
    return Buffer.concat([
      Buffer.from(`${pkt(`${ZERO} ${head} refs/heads/main\0report-status\n`)}0000`),
      pack,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * An app whose body parser read the push before `protect()` (a global `express.raw()`, as
 * proxies that re-send `req.body` need): the stream is empty, the bytes are in `req.body`.
 */
describe('push protection after a body parser', () => {
  it('scans the push a body parser already read, and refuses its token', async () => {
    const gate = createTokenGate({ pushProtection: { revoke: false } });
    const forwarded: Buffer[] = [];
    const app = express();
    app.use(express.raw({ type: 'application/x-git-receive-pack-request', limit: '10mb' }));
    app.use('/scm', gate.protect(), (req, res) => {
      forwarded.push(req.body as Buffer);
      res.type('application/x-git-receive-pack-result').end(`${pkt('unpack ok\n')}0000`);
    });
    const pusher = await gate.tokens.create({ user: 'ann', name: 'push', scope: 'write' });
    const leaked = await gate.tokens.create({ user: 'ann', name: 'leaky', scope: 'read' });
    const post = (body: Buffer) =>
      request(app)
        .post('/scm/proj/repo.git/git-receive-pack')
        .set('Authorization', `Bearer ${pusher.token}`)
        .set('Content-Type', 'application/x-git-receive-pack-request')
        .buffer(true)
        .parse((r, callback) => {
          const chunks: Buffer[] = [];
          r.on('data', (chunk: Buffer) => chunks.push(chunk));
          r.on('end', () => callback(null, Buffer.concat(chunks)));
        })
        .send(body);
    const refused = await post(pushOf(`token = ${leaked.token}\n`));
    expect((refused.body as Buffer).toString('latin1')).toContain('push contains a live API token');
    expect(forwarded).toHaveLength(0);
    // A clean push still goes on, its body where the parser left it.
    const clean = pushOf('nothing secret\n');
    const passed = await post(clean);
    expect((passed.body as Buffer).toString('latin1')).toContain('unpack ok');
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]!.equals(clean)).toBe(true);
    await gate.close();
  });

  it('refuses a push a parser turned into an object: its bytes cannot be judged', async () => {
    const gate = createTokenGate();
    let forwarded = 0;
    const app = express();
    app.use(express.urlencoded({ type: 'application/x-git-receive-pack-request', extended: false }));
    app.use('/scm', gate.protect(), (_req, res) => {
      forwarded++;
      res.end();
    });
    const pusher = await gate.tokens.create({ user: 'ann', name: 'push', scope: 'write' });
    const res = await request(app)
      .post('/scm/proj/repo.git/git-receive-pack')
      .set('Authorization', `Bearer ${pusher.token}`)
      .set('Content-Type', 'application/x-git-receive-pack-request')
      .send(pushOf('nothing secret\n'));
    expect(res.status).toBe(400);
    expect(forwarded).toBe(0);
    await gate.close();
  });
});
