import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTokenStore } from '../../lib/stores/open-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { tempDir } from '../support/temp-dir.js';

/** `identify` and `revoke-leaked` as users run them: the built command line, as a child process. */
const BUILD = resolve('.tmp/cli-scanning-test');
const BIN = join(BUILD, 'cli.js');
const PEPPER = 'cli-scanning-pepper';
const temp = tempDir('cli-scanning');
const storeUrl = `sqlite:${join(temp.dir, 'tokens.db')}`;
let tokens: TokenService;
let close: () => Promise<void>;

beforeAll(async () => {
  execFileSync(
    process.execPath,
    [resolve('node_modules/tsup/dist/cli-default.js'), '--out-dir', BUILD, '--format', 'esm', '--no-dts'],
    { stdio: 'pipe' },
  );
  const opened = await openTokenStore(storeUrl);
  tokens = new TokenService({
    store: opened.store,
    hasher: sha256Hasher({ pepper: PEPPER }),
    cache: { maxEntries: 0 },
  });
  close = () => opened.close();
}, 120_000);
afterAll(async () => {
  await close?.();
  temp.remove();
});

function cli(args: string[], stdin = '') {
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: {
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        TOKEN_STORE: storeUrl,
        TOKEN_PEPPER: PEPPER,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe('express-api-tokens identify', () => {
  it('reads the token from stdin and shows whose it is, never its secret or hash', async () => {
    const { token, info } = await tokens.create({
      user: 'alice',
      name: 'CI deploy',
      scope: 'write',
      resources: ['PROJ/repo'],
    });
    const run = await cli(['identify'], `  ${token}\n`);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^status:\s+live$/m);
    expect(run.stdout).toContain(info.id);
    expect(run.stdout).toContain('alice');
    expect(run.stdout).toContain('CI deploy');
    expect(run.stdout).toContain('PROJ/repo');
    expect(run.stdout + run.stderr).not.toContain(token.slice(15, 58));
    expect(run.stdout).not.toMatch(/hmac|hash/i);
    const json = JSON.parse((await cli(['identify', '--json'], token)).stdout);
    expect(json).toMatchObject({ status: 'live', info: { id: info.id, user: 'alice', scope: 'write' } });
    expect(json.info.hash).toBeUndefined();
  });

  it('says unknown for a revoked token or a wrong secret, and refuses a token on the command line', async () => {
    const { token, info } = await tokens.create({ user: 'bob', name: 'old', scope: 'read' });
    await tokens.revoke(info.id);
    const revoked = await cli(['identify'], token);
    expect(revoked.code).toBe(3);
    expect(revoked.stdout).toMatch(/^status:\s+unknown$/m);
    expect(revoked.stdout).not.toContain('bob');
    const other = await tokens.create({ user: 'carol', name: 'x', scope: 'read' });
    const asArgument = await cli(['identify', other.token]);
    expect(asArgument.code).toBe(2);
    expect(asArgument.stderr).not.toContain(other.token);
    const garbage = await cli(['identify'], 'bbt_not-a-token');
    expect(garbage.code).toBe(2);
  });
});

describe('express-api-tokens revoke-leaked', () => {
  it('revokes every live token found in a file, or on stdin, and logs token.leaked', async () => {
    const a = await tokens.create({ user: 'dave', name: 'leaked in a log', scope: 'read' });
    const b = await tokens.create({ user: 'dave', name: 'pasted', scope: 'read' });
    const gone = await tokens.create({ user: 'dave', name: 'gone', scope: 'read' });
    await tokens.revoke(gone.info.id);
    const wrong = `${b.token.slice(0, -1)}${b.token.at(-1) === 'x' ? 'y' : 'x'}`;
    const file = join(temp.dir, 'found.log');
    writeFileSync(file, `GET /x?t=${a.token} 200\nold=${gone.token}\nnot one: ${wrong}\n`);
    const log = join(temp.dir, 'audit.jsonl');
    const run = await cli(['--audit-log', log, 'revoke-leaked', file]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`revoked ${a.info.id}\n`);
    expect(run.stderr).toContain('2 well-formed tokens found, 1 live one revoked');
    expect(await tokens.verify(a.token)).toBeNull();
    expect(await tokens.verify(b.token)).not.toBeNull();
    const events = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'token.leaked', tokenId: a.info.id, source: 'report', finder: 'cli' }),
    );
    const fromStdin = await cli(['revoke-leaked', '-'], `{"token": "${b.token}"}`);
    expect(fromStdin.stdout).toBe(`revoked ${b.info.id}\n`);
    expect(await tokens.verify(b.token)).toBeNull();
  });
});
