import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forwardTo } from '../../lib/forward/index.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { PackScanner } from '../../lib/scanning/pack-scanner.js';

const ZERO = '0'.repeat(40);
const pkt = (line: string) => `${(Buffer.byteLength(line) + 4).toString(16).padStart(4, '0')}${line}`;

/** A commit holding `content` in a.txt, and its pack, made by git. */
function commitWith(content: string): { head: string; pack: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'eat-cmd-'));
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
    return { head, pack };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Command lines git's receive-pack accepts although git itself never sends them: object ids
 * in upper case (git parses hex either way), a ref name with a space (refused as a "funny
 * refname" only after the pack is stored), and no command it recognised at all.
 */
const spellings = (head: string): Array<[string, string]> => [
  ['upper-case object ids', pkt(`${ZERO} ${head.toUpperCase()} refs/heads/main\0report-status\n`)],
  ['a ref name with a space', pkt(`${ZERO} ${head} refs/heads/a b\0report-status\n`)],
];

async function scan(body: Buffer): Promise<string[]> {
  const scanner = new PackScanner('bbt');
  scanner.on('error', () => {});
  await new Promise<void>((resolve, reject) => scanner.write(body, (err) => (err ? reject(err) : resolve())));
  await new Promise<void>((resolve, reject) => {
    scanner.once('error', reject);
    scanner.end(() => resolve());
  });
  return [...scanner.findings.keys()];
}

describe('push commands spelled as git accepts them', () => {
  let upstream: Server;
  let upstreamUrl: string;
  let bare: string;

  beforeAll(async () => {
    bare = mkdtempSync(join(tmpdir(), 'eat-bare-'));
    execFileSync('git', ['init', '-q', '--bare', bare]);
    // The upstream is git itself: each push goes to `git receive-pack --stateless-rpc`.
    upstream = createServer((req, res) => {
      const child = spawn('git', ['receive-pack', '--stateless-rpc', bare]);
      req.pipe(child.stdin);
      res.writeHead(200, { 'Content-Type': 'application/x-git-receive-pack-result' });
      child.stdout.pipe(res);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => upstream.close(resolve));
    rmSync(bare, { recursive: true, force: true });
  });

  it('finds the token whatever the spelling, and fails on data after a section that updates nothing', async () => {
    const gate = createTokenGate();
    const leaked = await gate.tokens.create({ user: 'ann', name: 'leaky', scope: 'read' });
    const { head, pack } = commitWith(`token = ${leaked.token}\n`);
    for (const [what, commands] of spellings(head))
      expect(await scan(Buffer.concat([Buffer.from(`${commands}0000`), pack])), what).toEqual([leaked.token]);
    await expect(scan(Buffer.concat([Buffer.from('0000'), pack]))).rejects.toThrow();
    await gate.close();
  });

  it('lets none of such a push reach git: no ref, no object', async () => {
    const gate = createTokenGate({ pushProtection: { revoke: false } });
    const app = express();
    app.use('/scm', gate.protect(), forwardTo(upstreamUrl));
    const pusher = await gate.tokens.create({ user: 'ann', name: 'push', scope: 'write' });
    const leaked = await gate.tokens.create({ user: 'ann', name: 'leaky', scope: 'read' });
    const { head, pack } = commitWith(`token = ${leaked.token}\n`);
    for (const [what, commands] of spellings(head)) {
      const res = await request(app)
        .post('/scm/proj/repo.git/git-receive-pack')
        .set('Authorization', `Bearer ${pusher.token}`)
        .set('Content-Type', 'application/x-git-receive-pack-request')
        .buffer(true)
        .parse((r, callback) => {
          const chunks: Buffer[] = [];
          r.on('data', (chunk: Buffer) => chunks.push(chunk));
          r.on('end', () => callback(null, Buffer.concat(chunks)));
        })
        .send(Buffer.concat([Buffer.from(`${commands}0000`), pack]));
      expect((res.body as Buffer).toString('latin1'), what).toContain('push contains a live API token');
    }
    // No update git would read, then the pack: refused as unreadable (git would have taken none of it anyway).
    const bare400 = await request(app)
      .post('/scm/proj/repo.git/git-receive-pack')
      .set('Authorization', `Bearer ${pusher.token}`)
      .set('Content-Type', 'application/x-git-receive-pack-request')
      .send(Buffer.concat([Buffer.from('0000'), pack]));
    expect(bare400.status).toBe(400);
    expect(execFileSync('git', ['-C', bare, 'for-each-ref'], { encoding: 'utf8' })).toBe('');
    expect(() => execFileSync('git', ['-C', bare, 'cat-file', '-e', head], { stdio: 'ignore' })).toThrow();
    await gate.close();
  }, 30_000);

  it('judges as a push any path a servlet container maps to git-receive-pack, whatever the content type', async () => {
    const gate = createTokenGate({ pushProtection: { revoke: false } });
    const app = express();
    app.use('/scm', gate.protect(), forwardTo(upstreamUrl));
    const pusher = await gate.tokens.create({ user: 'ann', name: 'push', scope: 'write' });
    const leaked = await gate.tokens.create({ user: 'ann', name: 'leaky', scope: 'read' });
    const { head, pack } = commitWith(`token = ${leaked.token}\n`);
    const body = Buffer.concat([Buffer.from(`${spellings(head)[0]![1]}0000`), pack]);
    // Tomcat drops `;parameters` from each segment and resolves dot segments before mapping.
    for (const path of [
      '/scm/proj/repo.git/git-receive-pack;jsessionid=1',
      '/scm/proj/repo.git/git-receive-pack%3Bx',
      '/scm/proj/repo.git/git-receive-pack/.',
      '/scm/proj/repo.git/git-receive-pack/x/..',
      '/scm/proj/repo.git/git-receive-pack;/',
    ]) {
      const res = await request(app)
        .post(path)
        .set('Authorization', `Bearer ${pusher.token}`)
        .set('Content-Type', 'application/octet-stream')
        .buffer(true)
        .parse((r, callback) => {
          const chunks: Buffer[] = [];
          r.on('data', (chunk: Buffer) => chunks.push(chunk));
          r.on('end', () => callback(null, Buffer.concat(chunks)));
        })
        .send(body);
      expect((res.body as Buffer).toString('latin1'), path).toContain('push contains a live API token');
    }
    expect(execFileSync('git', ['-C', bare, 'for-each-ref'], { encoding: 'utf8' })).toBe('');
    await gate.close();
  }, 30_000);
});
