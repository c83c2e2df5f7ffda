import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import { bitbucketAccessTokens } from '../../lib/upstream/bitbucket-access-tokens.js';
import { type BitbucketStandIn, startBitbucketStandIn } from '../support/bitbucket-stand-in.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('cli-upstream');
const KEY = randomBytes(32);
const PASSWORDS = { alice: 'alice-pw', bob: 'bob-pw' };
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  temp.remove();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The command line in a process of its own, with only the environment given. */
function cli(args: string[], env: Record<string, string>): Promise<Run> {
  const base = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '' };
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'lib/cli/main.ts', ...args],
      { env: { ...base, ...env } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        done({ code, stdout, stderr });
      },
    );
  });
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return check();
}

/** A proxy in access-token mode on a SQLite file, in front of the stand-in Bitbucket. */
async function proxy(): Promise<{ bitbucket: BitbucketStandIn; gate: TokenGate; file: string }> {
  const bitbucket = await startBitbucketStandIn({
    adminToken: 'groups-token',
    groups: {},
    passwords: PASSWORDS,
    accessTokens: {},
  });
  const file = join(temp.dir, `tokens-${randomBytes(4).toString('hex')}.db`);
  const store = new SqliteTokenStore({ path: file });
  const gate = createTokenGate({
    store,
    pepper: 'cli-upstream',
    upstream: bitbucketAccessTokens({
      baseUrl: bitbucket.baseUrl,
      encryptionKeys: [{ id: 'k1', key: KEY }],
      sweepIntervalMs: 1_000,
    }),
  });
  cleanups.push(async () => {
    await gate.close();
    await store.close();
    await bitbucket.close();
  });
  return { bitbucket, gate, file };
}

const mint = (gate: TokenGate, user: keyof typeof PASSWORDS, name: string) =>
  gate.tokens.create({ user, name, scope: 'read', upstream: { password: PASSWORDS[user] } });

describe('revoking from the command line in access-token mode', () => {
  it('deletes the Bitbucket access token at once when the CLI has the proxies’ keys', async () => {
    const { bitbucket, gate, file } = await proxy();
    const { info } = await mint(gate, 'alice', 'laptop');
    const kept = await mint(gate, 'bob', 'ci');
    expect(bitbucket.accessTokens.tokens.size).toBe(2);
    const env = {
      TOKEN_STORE: `sqlite:${file}`,
      ENCRYPTION_KEYS: `k1:${KEY.toString('base64')}`,
      BITBUCKET_URL: bitbucket.baseUrl,
    };
    const run = await cli(['revoke', info.id], env);
    expect(run.stderr).toMatch(new RegExp(`deleted Bitbucket access token \\d+ behind ${info.id}`));
    expect(run).toMatchObject({ code: 0, stdout: `revoked ${info.id}\n` });
    expect(bitbucket.accessTokens.tokens.size).toBe(1); // bob's stays
    expect(await gate.tokens.verify(kept.token)).not.toBeNull();
    expect(run.stdout + run.stderr).not.toContain(KEY.toString('base64'));
  });

  it('revoke-user deletes every Bitbucket access token of the user', async () => {
    const { bitbucket, gate, file } = await proxy();
    await mint(gate, 'alice', 'one');
    await mint(gate, 'alice', 'two');
    expect(bitbucket.accessTokens.tokens.size).toBe(2);
    const run = await cli(['revoke-user', 'alice'], {
      TOKEN_STORE: `sqlite:${file}`,
      ENCRYPTION_KEYS: `k1:${KEY.toString('base64')}`,
      BITBUCKET_URL: bitbucket.baseUrl,
    });
    expect(run).toMatchObject({ code: 0, stdout: 'revoked 2 tokens of alice\n' });
    expect(bitbucket.accessTokens.tokens.size).toBe(0);
  });

  it('without the keys, leaves a tombstone that a running proxy deletes the Bitbucket token by', async () => {
    const { bitbucket, gate, file } = await proxy();
    const { info, token } = await mint(gate, 'alice', 'laptop');
    expect(bitbucket.accessTokens.tokens.size).toBe(1);
    const run = await cli(['revoke', info.id], { TOKEN_STORE: `sqlite:${file}` });
    expect(run).toMatchObject({ code: 0, stdout: `revoked ${info.id}\n` });
    expect(run.stderr).toContain('the proxies delete it within a minute');
    expect(await gate.tokens.verify(token)).toBeNull();
    // The proxy's sweep (every second here) finds the tombstone and deletes the Bitbucket token.
    expect(await until(() => bitbucket.accessTokens.tokens.size === 0, 5_000)).toBe(true);
  });

  it('refuses ENCRYPTION_KEYS without BITBUCKET_URL before revoking anything', async () => {
    const { gate, file } = await proxy();
    const { info, token } = await mint(gate, 'alice', 'laptop');
    const run = await cli(['revoke', info.id], {
      TOKEN_STORE: `sqlite:${file}`,
      ENCRYPTION_KEYS: `k1:${KEY.toString('base64')}`,
    });
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('set BITBUCKET_URL too');
    expect(await gate.tokens.verify(token)).not.toBeNull();
  });
});
