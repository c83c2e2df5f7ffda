import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type RunningProxy, startProxy } from '../../examples/bitbucket-proxy.js';
import type { AuditEvent, TokenLeakedEvent } from '../../lib/index.js';

const run = promisify(execFile);

/**
 * Push protection end to end: the example proxy in front of the demo Bitbucket (the real
 * `git http-backend` on a bare repository), driven by the real git command line.
 */
describe('push protection, with git through the example proxy', () => {
  let proxy: RunningProxy;
  let dir: string;
  let host: string;
  let bare: string;
  const events: AuditEvent[] = [];
  const env = () => ({
    ...process.env,
    HOME: dir,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    LC_ALL: 'C',
  });
  const git = (...args: string[]) => run('git', args, { cwd: dir, env: env(), maxBuffer: 1 << 26 });
  const commitAll = (repo: string, message: string) =>
    git(
      '-C',
      repo,
      '-c',
      'user.name=x',
      '-c',
      'user.email=x@example.com',
      'commit',
      '-q',
      '-a',
      '-m',
      message,
    );
  /** The upstream repository as it is: every ref and every object (loose or packed). */
  const upstreamState = async () => {
    const refs = (await git('-C', bare, 'for-each-ref', '--format=%(objectname) %(refname)')).stdout;
    const objects = (await git('-C', bare, 'cat-file', '--batch-all-objects', '--batch-check')).stdout;
    const counted = (await git('-C', bare, 'count-objects', '-v')).stdout;
    const count = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(counted)![1]);
    return { refs, objects, loose: count('count'), packed: count('in-pack') };
  };
  const leaks = () => events.filter((e): e is TokenLeakedEvent => e.type === 'token.leaked');
  const newToken = async (name: string) => proxy.gate.tokens.create({ user: 'demo', name, scope: 'write' });
  /** A fresh clone of the upstream's main, with the write token. */
  const cloneFresh = async (name: string) => {
    await git('clone', '-q', `http://demo:${proxy.demo!.writeToken}@${host}/scm/demo/repo.git`, name);
    return join(dir, name);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eat-scan-'));
    const log = console.log;
    vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      const line = args[0];
      if (typeof line === 'string' && line.startsWith('{"')) events.push(JSON.parse(line) as AuditEvent);
      else log(...args);
    });
    proxy = await startProxy({
      PORT: '0',
      BITBUCKET_URL: '',
      REDIS_URL: '',
      TOKEN_STORE: `sqlite:${join(dir, 'tokens.db')}`,
    });
    host = proxy.url.replace('http://', '');
    bare = join(proxy.demo!.upstream.root, 'demo', 'repo.git');
  }, 60_000);

  afterAll(async () => {
    vi.restoreAllMocks();
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    events.length = 0;
  });

  it('refuses a commit adding a file with a live token, names it, revokes it, and Bitbucket is unchanged', async () => {
    const leaked = await newToken('deploy key');
    const repo = await cloneFresh('file-leak');
    writeFileSync(join(repo, 'deploy.env'), `# deployment\nAPI_TOKEN=${leaked.token}\n`);
    await git('-C', repo, 'add', 'deploy.env');
    await commitAll(repo, 'add deployment settings');
    const before = await upstreamState();
    const pushes = proxy.demo!.upstream.pushes.length;

    const push = await git('-C', repo, 'push', 'origin', 'HEAD:main').catch((err: { stderr: string }) => err);
    const stderr = (push as { stderr: string }).stderr;
    expect(stderr).toMatch(/! \[remote rejected\] HEAD -> main \(push contains a live API token\)/);
    expect(stderr).toContain(`remote:   token "deploy key" (id ${leaked.info.id}, owner demo) in deploy.env`);
    expect(stderr).toContain('remote: The token has been revoked');
    expect(stderr).not.toContain(leaked.token);
    expect(stderr).not.toContain(leaked.token.slice(4 + 11, 4 + 11 + 43));

    expect(await upstreamState()).toEqual(before);
    expect(proxy.demo!.upstream.pushes).toHaveLength(pushes);
    expect(await proxy.gate.tokens.verify(leaked.token)).toBeNull();
    expect(leaks()).toEqual([
      expect.objectContaining({
        type: 'token.leaked',
        source: 'push',
        tokenId: leaked.info.id,
        name: 'deploy key',
        user: 'demo',
        pushedBy: 'demo',
        revoked: true,
        path: 'deploy.env',
        refs: ['refs/heads/main'],
        repository: '/scm/demo/repo.git/git-receive-pack',
      }),
    ]);
    expect(events.filter((e) => e.type === 'token.revoked')).toEqual([
      expect.objectContaining({ tokenId: leaked.info.id, actor: 'push-protection' }),
    ]);
    expect(JSON.stringify(events)).not.toContain(leaked.token);
  }, 60_000);

  it('refuses a live token that is only in a commit message', async () => {
    const leaked = await newToken('in a message');
    const repo = await cloneFresh('message-leak');
    await git(
      '-C',
      repo,
      '-c',
      'user.name=x',
      '-c',
      'user.email=x@example.com',
      'commit',
      '--allow-empty',
      '-q',
      '-m',
      `deploy with ${leaked.token}`,
    );
    const head = (await git('-C', repo, 'rev-parse', 'HEAD')).stdout.trim();
    const before = await upstreamState();
    const push = await git('-C', repo, 'push', 'origin', 'HEAD:main').catch((err: { stderr: string }) => err);
    expect((push as { stderr: string }).stderr).toContain(
      `(id ${leaked.info.id}, owner demo) in the message of commit ${head.slice(0, 12)}`,
    );
    expect(await upstreamState()).toEqual(before);
    expect(await proxy.gate.tokens.verify(leaked.token)).toBeNull();
    expect(leaks()).toEqual([expect.objectContaining({ tokenId: leaked.info.id, path: `commit ${head}` })]);
  }, 60_000);

  it('refuses a live token that only travels in a delta (an edit of a large file)', async () => {
    const repo = await cloneFresh('delta-leak');
    // A large text file pushed first, so the edit below travels as a delta against it.
    const lines = Array.from({ length: 4000 }, (_, i) => `line ${i} ${randomBytes(12).toString('hex')}`);
    writeFileSync(join(repo, 'settings.txt'), `${lines.join('\n')}\n`);
    await git('-C', repo, 'add', 'settings.txt');
    await commitAll(repo, 'settings');
    await git('-C', repo, 'push', '-q', 'origin', 'HEAD:main');

    const leaked = await newToken('in a delta');
    lines.splice(2000, 0, `token = ${leaked.token}`);
    writeFileSync(join(repo, 'settings.txt'), `${lines.join('\n')}\n`);
    await commitAll(repo, 'one more setting');
    const before = await upstreamState();
    const push = await git('-C', repo, 'push', 'origin', 'HEAD:main').catch((err: { stderr: string }) => err);
    // "a changed file" is what a delta is reported as: no whole blob in the pack held the token.
    expect((push as { stderr: string }).stderr).toContain(
      `(id ${leaked.info.id}, owner demo) in a changed file`,
    );
    expect(await upstreamState()).toEqual(before);
    expect(await proxy.gate.tokens.verify(leaked.token)).toBeNull();
    expect(leaks()).toEqual([expect.objectContaining({ tokenId: leaked.info.id, path: 'a changed file' })]);
  }, 60_000);

  // The new token's first character differs from the old one's, so git's delta copies exactly
  // `api_token = bbt_` from the old line and inserts the new token's characters; when the two
  // tokens also end alike (1 time in 62), the copy after the insert takes their last character too.
  for (const endsAlike of [false, true])
    it(`refuses a rotated token written over the old one, where the delta copies the old \`bbt_\`${endsAlike ? ' and its last character' : ''}`, async () => {
      const repo = await cloneFresh(endsAlike ? 'rotation-ends-alike' : 'rotation');
      const old = await newToken('before rotation');
      await proxy.gate.tokens.revoke(old.info.id);
      const lines = Array.from(
        { length: 3000 },
        (_, i) => `setting ${i} = ${randomBytes(10).toString('hex')}`,
      );
      lines.splice(1500, 0, `api_token = ${old.token}`);
      writeFileSync(join(repo, 'app.conf'), `${lines.join('\n')}\n`);
      await git('-C', repo, 'add', 'app.conf');
      await commitAll(repo, 'config with the old (revoked) token');
      await git('-C', repo, 'push', '-q', 'origin', 'HEAD:main');
      let rotated = await newToken('after rotation');
      while (rotated.token[4] === old.token[4] || (rotated.token.at(-1) === old.token.at(-1)) !== endsAlike) {
        await proxy.gate.tokens.revoke(rotated.info.id);
        rotated = await newToken('after rotation');
      }
      lines[1500] = `api_token = ${rotated.token}`;
      writeFileSync(join(repo, 'app.conf'), `${lines.join('\n')}\n`);
      await commitAll(repo, 'rotate the token');
      const before = await upstreamState();
      const push = await git('-C', repo, 'push', 'origin', 'HEAD:main').catch(
        (err: { stderr: string }) => err,
      );
      expect((push as { stderr: string }).stderr).toContain(
        `(id ${rotated.info.id}, owner demo) in a changed file`,
      );
      expect(await upstreamState()).toEqual(before);
    }, 60_000);

  it("refuses a token whose last characters git's delta copies from the old file", async () => {
    const repo = await cloneFresh('cut-short');
    const leaked = await newToken('cut short');
    // The old file: the line before the insertion point ends with the token's last 3 characters,
    // so git extends the copy of what follows backwards over them: the delta inserts only 57.
    const lines = Array.from({ length: 3000 }, (_, i) => `entry ${i} ${randomBytes(10).toString('hex')}`);
    lines[1499] = `${lines[1499]}${leaked.token.slice(-3)}`;
    writeFileSync(join(repo, 'list.txt'), `${lines.join('\n')}\n`);
    await git('-C', repo, 'add', 'list.txt');
    await commitAll(repo, 'a list');
    await git('-C', repo, 'push', '-q', 'origin', 'HEAD:main');
    lines[1499] = `${lines[1499]!.slice(0, -3)}\nkey ${leaked.token}`;
    writeFileSync(join(repo, 'list.txt'), `${lines.join('\n')}\n`);
    await commitAll(repo, 'one more entry');
    const before = await upstreamState();
    const push = await git('-C', repo, 'push', 'origin', 'HEAD:main').catch((err: { stderr: string }) => err);
    expect((push as { stderr: string }).stderr).toContain(
      `(id ${leaked.info.id}, owner demo) in a changed file`,
    );
    expect(await upstreamState()).toEqual(before);
  }, 60_000);

  it('mounts the revocation endpoint: curl kills a live token without logging in', async () => {
    const found = await newToken('found on a wiki');
    const res = await run('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      'Content-Type: application/json',
      '-d',
      JSON.stringify({ credentials: [found.token, 'bbt_nothing'] }),
      `${proxy.url}/tokens/leaked`,
    ]);
    expect(res.stdout).toBe('202');
    for (let i = 0; i < 100 && (await proxy.gate.tokens.verify(found.token)) !== null; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(await proxy.gate.tokens.verify(found.token)).toBeNull();
    expect(leaks()).toEqual([expect.objectContaining({ tokenId: found.info.id, source: 'report' })]);
  });

  it('lets a string with a wrong checksum and a revoked token through', async () => {
    const repo = await cloneFresh('harmless');
    const live = await newToken('checksum base');
    const last = live.token.at(-1) === 'A' ? 'B' : 'A';
    const wrongChecksum = `${live.token.slice(0, -1)}${last}`;
    const revoked = await newToken('revoked already');
    await proxy.gate.tokens.revoke(revoked.info.id);
    writeFileSync(join(repo, 'notes.txt'), `not a token: ${wrongChecksum}\nold token: ${revoked.token}\n`);
    await git('-C', repo, 'add', 'notes.txt');
    await commitAll(repo, `notes, also ${wrongChecksum}`);
    const pushes = proxy.demo!.upstream.pushes.length;
    await git('-C', repo, 'push', '-q', 'origin', 'HEAD:main');
    expect(proxy.demo!.upstream.pushes).toHaveLength(pushes + 1);
    const head = (await git('-C', repo, 'rev-parse', 'HEAD')).stdout.trim();
    expect((await git('-C', bare, 'rev-parse', 'main')).stdout.trim()).toBe(head);
    expect(readFileSync(join(repo, 'notes.txt'), 'utf8')).toContain(revoked.token);
    expect(await proxy.gate.tokens.verify(live.token)).not.toBeNull();
    expect(leaks()).toEqual([]);
  }, 60_000);
});
