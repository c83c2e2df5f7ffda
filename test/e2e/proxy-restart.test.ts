import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { demoInstructions, type RunningProxy, startProxy } from '../../examples/bitbucket-proxy.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { openTokenStore } from '../../lib/stores/open-token-store.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('proxy-restart');
const running: RunningProxy[] = [];
afterAll(async () => {
  for (const proxy of running) await proxy.close();
  temp.remove();
});

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** A printed command, run by a shell as a user would paste it (curl also reports the HTTP status). */
function sh(command: string, cwd: string): Promise<Ran> {
  const line = command.startsWith('curl ') ? `${command} -w '\\n%{http_code}'` : command;
  const env = {
    PATH: process.env['PATH'],
    HOME: cwd,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
  };
  return new Promise((done) => {
    execFile('sh', ['-c', line], { cwd, env, timeout: 60_000 }, (err, stdout, stderr) =>
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

/** The `$ …` lines of the welcome text, in order. */
const commandsOf = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.startsWith('  $ '))
    .map((line) => line.slice(4));

/** Runs commands in order; each must succeed (curl: a 2xx answer). Returns the curl bodies. */
async function runAll(commands: string[], cwd: string): Promise<string[]> {
  const bodies: string[] = [];
  for (const command of commands) {
    const ran = await sh(command, cwd);
    expect(ran.code, `${command}\n${ran.stderr}`).toBe(0);
    if (command.startsWith('curl ')) {
      const status = ran.stdout.slice(ran.stdout.lastIndexOf('\n') + 1);
      expect(status, `${command}\n${ran.stdout}`).toMatch(/^2\d\d$/);
      bodies.push(ran.stdout.slice(0, ran.stdout.lastIndexOf('\n')));
    }
  }
  return bodies;
}

/** Every file and directory under `dir` with its permission bits. */
function modes(dir: string): Array<[string, number, boolean]> {
  const out: Array<[string, number, boolean]> = [];
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const stat = statSync(join(dir, entry));
    out.push([entry, stat.mode & 0o777, stat.isDirectory()]);
  }
  return out;
}

async function start(env: Record<string, string>): Promise<RunningProxy> {
  const proxy = await startProxy(env);
  running.push(proxy);
  return proxy;
}

async function stop(proxy: RunningProxy): Promise<void> {
  running.splice(running.indexOf(proxy), 1);
  await proxy.close();
}

describe.each([
  ['header', {}],
  ['access-token', { BITBUCKET_UPSTREAM_MODE: 'access-token' }],
] as const)('the demo proxy across a restart (%s mode)', (mode, modeEnv) => {
  it("keeps every command the first start printed working: clone, push from that clone, curl, the token page's tokens", async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const root = join(temp.dir, mode);
    const data = join(root, 'data');
    const [firstWork, laterWork] = [join(root, 'first'), join(root, 'later')];
    mkdirSync(firstWork, { recursive: true });
    mkdirSync(laterWork, { recursive: true });
    const env = {
      PORT: '0',
      BITBUCKET_URL: '',
      REDIS_URL: '',
      TOKEN_STORE: `sqlite:${join(data, 'tokens.db')}`,
      ...modeEnv,
    };

    const first = await start(env);
    const firstText = demoInstructions(first);
    const { readToken, writeToken } = first.demo!;
    expect(readToken).toMatch(/^bbt_/);
    expect(writeToken).toMatch(/^bbt_/);
    const commands = commandsOf(firstText);
    expect(commands.length).toBeGreaterThanOrEqual(7);
    const bodies = await runAll(commands, firstWork);
    // The management API's new token: what the token page makes too.
    const made = JSON.parse(bodies.find((b) => b.includes('"token":"bbt_'))!) as { token: string };
    // Access-token mode: the Bitbucket tokens behind them (the stand-in keeps only their hashes).
    const bitbucketTokens = [...(first.demo!.upstream.accessTokens?.tokens.values() ?? [])].map(
      (t) => t.token,
    );
    expect(bitbucketTokens).toHaveLength(mode === 'header' ? 0 : 3);
    const port = new URL(first.url).port;
    await stop(first);

    const second = await start({ ...env, PORT: port });
    // Health is probed in the background from the start: /healthz is ready with nobody asking /readyz.
    let health = { ready: false, checks: { store: { checkedAt: null as string | null } } };
    for (let i = 0; i < 50 && !health.ready; i++) {
      health = (await (await fetch(`${second.url}/healthz`)).json()) as typeof health;
      if (!health.ready) await new Promise((r) => setTimeout(r, 20));
    }
    expect(health).toMatchObject({ ready: true, checks: { store: { checkedAt: expect.any(String) } } });
    const secondText = demoInstructions(second);
    // No secret is printed again, and the text says where new ones come from.
    expect(second.demo!.readToken).toBeUndefined();
    expect(second.demo!.writeToken).toBeUndefined();
    expect(secondText).not.toContain(readToken);
    expect(secondText).not.toContain(writeToken);
    expect(secondText).toMatch(/still work/);
    expect(secondText).toContain(`${second.url}/tokens/`);

    // The first start's clone pushes on top of what it pushed before the restart.
    const push = commands.filter((c) => c.startsWith('git -C demo-repo'));
    expect(push).toHaveLength(2);
    await runAll(push, firstWork);
    // Every command as the first start printed it, from a fresh directory.
    const again = await runAll(commands, laterWork);
    const echo = JSON.parse(again[0]!) as { user: string; via: string };
    expect(echo).toMatchObject({ user: 'demo', via: mode === 'header' ? 'header' : 'token' });
    expect(second.demo!.upstream.pushes).toEqual(['demo', 'demo']);
    // The token made through the management API before the restart.
    const call = await fetch(`${second.url}/rest/api/1.0/projects`, {
      headers: { authorization: `Bearer ${made.token}` },
    });
    expect([call.status, await call.text()]).toEqual([200, expect.any(String)]);

    // The state: directories 0700, files 0600 (the tokens' SQLite files too; the repository's
    // own files aside), no token in clear.
    const state = modes(data);
    for (const [entry, bits, dir] of state.filter(([e]) => !e.includes('repo.git'))) {
      if (dir) expect([entry, bits]).toEqual([entry, 0o700]);
      else expect([entry, bits]).toEqual([entry, 0o600]);
    }
    expect(state.map(([e]) => e)).toContain('demo-secrets.json');
    for (const [entry, , dir] of state) {
      if (dir) continue;
      const bytes = readFileSync(join(data, entry), 'latin1');
      // A token's secret part (after `bbt_` and the 11-character id, which is public).
      for (const secret of [readToken!, writeToken!, made.token].map((t) => t.slice(15)))
        expect(bytes).not.toContain(secret);
      for (const secret of bitbucketTokens) expect(bytes).not.toContain(secret);
    }
    await stop(second);
    log.mockRestore();
  }, 120_000);
});

describe('the demo proxy on a ./data an older demo made', () => {
  it('keeps its tokens working (they were made without a pepper, before the demo kept secrets)', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const data = join(temp.dir, 'older', 'data');
    const url = `sqlite:${join(data, 'tokens.db')}`;
    const opened = await openTokenStore(url);
    const older = createTokenGate({ store: opened.store });
    const made = await older.tokens.create({ user: 'demo', name: 'laptop', scope: 'read' });
    await older.close();
    await opened.close();

    const proxy = await start({ PORT: '0', BITBUCKET_URL: '', REDIS_URL: '', TOKEN_STORE: url });
    const call = await fetch(`${proxy.url}/rest/api/1.0/projects`, {
      headers: { authorization: `Bearer ${made.token}` },
    });
    expect(call.status).toBe(200);
    expect(proxy.demo!.readToken).toMatch(/^bbt_/);
    await stop(proxy);
    log.mockRestore();
  });
});

describe('DEMO_NEW_TOKENS=1', () => {
  it('revokes the demo tokens an earlier start printed and prints new ones', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const env = {
      PORT: '0',
      BITBUCKET_URL: '',
      REDIS_URL: '',
      TOKEN_STORE: `sqlite:${join(temp.dir, 'renew', 'data', 'tokens.db')}`,
    };
    const first = await start(env);
    const old = first.demo!.readToken!;
    await stop(first);
    const second = await start({ ...env, DEMO_NEW_TOKENS: '1' });
    const call = async (token: string) =>
      (await fetch(`${second.url}/rest/api/1.0/projects`, { headers: { authorization: `Bearer ${token}` } }))
        .status;
    expect(second.demo!.readToken).toMatch(/^bbt_/);
    expect(second.demo!.keptIds).toEqual([]);
    expect(demoInstructions(second)).toContain(second.demo!.readToken!);
    expect(await call(second.demo!.readToken!)).toBe(200);
    expect(await call(old)).toBe(401);
    await stop(second);
    log.mockRestore();
  });
});
