import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { openTokenStore } from '../../lib/stores/open-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';
import { dropSchema, freshSchema, SHARED_POSTGRES_URL, testPool } from '../support/postgres.js';
import { freePort } from '../support/redis-server.js';
import { tempDir } from '../support/temp-dir.js';

/**
 * The command line as users run it: built by tsup from the package's own config (into a
 * scratch directory, so a `dist/` in use by a bench or a developer is left alone), then run as
 * a child process.
 */
const BUILD = resolve('.tmp/cli-test');
const BIN = join(BUILD, 'cli.js');
const PEPPER = 'cli-test-pepper';
/** The CLI names the operating-system user as the actor. */
const ACTOR = `cli/${userInfo().username}`;
const temp = tempDir('cli');
const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  execFileSync(
    process.execPath,
    [resolve('node_modules/tsup/dist/cli-default.js'), '--out-dir', BUILD, '--format', 'esm', '--no-dts'],
    { stdio: 'pipe' },
  );
}, 120_000);
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  temp.remove();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  // Only what the test gives: no store URL or pepper leaks in from the developer's shell.
  const base = { PATH: process.env['PATH'], HOME: process.env['HOME'] };
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...base, ...env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      done({ code, stdout, stderr });
    });
  });
}

/** A gate on the store at `url`, as a proxy would run it, with a protected route. */
async function proxyOn(url: string) {
  const opened = await openTokenStore(url);
  const gate: TokenGate = createTokenGate({ store: opened.store, pepper: PEPPER });
  for (let i = 0; i < 100 && !(await gate.health()).ready; i++) await new Promise((r) => setTimeout(r, 20));
  const app = express();
  app.use('/rest', gate.protect(), (req, res) => {
    res.json({ user: req.auth?.user });
  });
  const use = async (token: string) =>
    (await request(app).get('/rest/api/1.0/projects').set('authorization', `Bearer ${token}`)).status;
  return {
    use,
    async close() {
      await gate.close();
      await opened.close();
    },
  };
}

const STORES: Array<[string, () => Promise<{ url: string; cleanup: () => Promise<void> }>]> = [
  [
    'Redis',
    async () => {
      const prefix = `cli-${randomBytes(4).toString('hex')}`;
      return {
        url: `${inject('redisUrl')}?keyPrefix=${prefix}`,
        async cleanup() {
          const redis = new Redis(inject('redisUrl'));
          const keys = await redis.keys(`${prefix}:*`);
          if (keys.length > 0) await redis.del(...keys);
          redis.disconnect();
        },
      };
    },
  ],
  [
    'SQLite',
    async () => ({
      url: `sqlite:${join(temp.dir, `${randomBytes(4).toString('hex')}.db`)}`,
      cleanup: async () => {},
    }),
  ],
  [
    'PostgreSQL',
    async () => {
      const schema = freshSchema('cli');
      return {
        url: `${SHARED_POSTGRES_URL}?schema=${schema}`,
        async cleanup() {
          const pool = testPool();
          await dropSchema(pool, schema);
          await pool.end();
        },
      };
    },
  ],
];

describe.each(STORES)('express-api-tokens (the built CLI) on %s', (_name, openStore) => {
  it('round-trips create → use through a proxy → revoke → refused, with an audit log', async () => {
    const { url, cleanup } = await openStore();
    cleanups.push(cleanup);
    const proxy = await proxyOn(url);
    cleanups.push(() => proxy.close());
    const audit = join(temp.dir, `audit-${randomBytes(4).toString('hex')}.jsonl`);
    const env = { TOKEN_STORE: url, TOKEN_PEPPER: PEPPER, TOKEN_AUDIT_LOG: audit };

    const created = await cli(
      ['create', '--user', 'alice', '--name', 'deploy bot', '--scope', 'read', '--expires', '30d'],
      env,
    );
    expect(created).toMatchObject({ code: 0, stderr: expect.stringMatching(/^Created \w{11} for alice/) });
    expect(created.stdout).toMatch(/^bbt_[0-9A-Za-z]+\n$/);
    const token = created.stdout.trim();
    const id = /Created (\w{11})/.exec(created.stderr)![1]!;
    expect(created.stderr).not.toContain(token);
    expect(await proxy.use(token)).toBe(200);

    const listed = await cli(['list', '--user', 'alice', '--json'], env);
    expect(listed.code).toBe(0);
    const lines = listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines).toEqual([
      expect.objectContaining({
        id,
        user: 'alice',
        name: 'deploy bot',
        scope: 'read',
        createdBy: ACTOR,
      }),
    ]);
    const table = await cli(['list', '--all'], env);
    expect(table.stdout).toMatch(new RegExp(`^ID +USER +SCOPE +NAME .*\\n${id} +alice +read +deploy bot `));
    expect((await cli(['show', id, '--json'], env)).stdout).toContain(`"id":"${id}"`);

    const revoked = await cli(['revoke', id], env);
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked ${id}\n` });
    const since = Date.now();
    let status = await proxy.use(token);
    while (status === 200 && Date.now() - since < 2_000) {
      await new Promise((r) => setTimeout(r, 20));
      status = await proxy.use(token);
    }
    expect(status).toBe(401);
    expect(Date.now() - since).toBeLessThan(1_500);
    expect((await cli(['revoke', id], env)).code).toBe(3);

    const events = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(events.map((e) => [e.type, e.actor, e.tokenId])).toEqual([
      ['token.created', ACTOR, id],
      ['token.revoked', ACTOR, id],
    ]);
    expect(readFileSync(audit, 'utf8')).not.toContain(token);
  });
});

describe('express-api-tokens (the built CLI)', () => {
  const url = () => `sqlite:${join(temp.dir, 'cli.db')}`;
  const env = () => ({ TOKEN_STORE: url(), TOKEN_PEPPER: PEPPER });
  it('answers --help for the program and every command', async () => {
    for (const command of [
      [],
      ['init'],
      ['create'],
      ['list'],
      ['show'],
      ['rename'],
      ['rate-limit'],
      ['revoke'],
      ['revoke-user'],
      ['stats'],
      ['export'],
    ]) {
      const run = await cli([...command, '--help']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^Usage: express-api-tokens/);
    }
    expect((await cli(['--help'])).stdout).toContain('Exit codes: 0 done, 1 internal error, 2 usage error');
    expect((await cli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("sets a token's own rate limit on create and later, and refuses a malformed one", async () => {
    expect((await cli(['init'], env())).code).toBe(0);
    const created = await cli(
      ['create', '--user', 'rita', '--name', 'ci', '--scope', 'read', '--rate-limit', '60/60'],
      env(),
    );
    expect(created.code).toBe(0);
    const id = /Created (\w{11})/.exec(created.stderr)![1]!;
    expect(JSON.parse((await cli(['show', id, '--json'], env())).stdout).rateLimit).toEqual({
      requests: 60,
      windowSeconds: 60,
    });
    expect((await cli(['show', id], env())).stdout).toContain('rate limit:       60 in 60 s');
    expect(await cli(['rate-limit', id, '5/1'], env())).toMatchObject({
      code: 0,
      stdout: `${id}: at most 5 requests in 1 seconds\n`,
    });
    expect((await cli(['rate-limit', id, 'none'], env())).stdout).toBe(
      `${id}: the proxy's default rate limit\n`,
    );
    const bad = await cli(['rate-limit', id, 'fast'], env());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/requests \/ seconds, e\.g\. 600\/60/);
  });

  it('ends with a distinct exit code for each kind of failure', async () => {
    const e = env();
    expect(await cli(['init'], e)).toMatchObject({ code: 0, stdout: `token store ready at ${url()}\n` });
    // 2: usage.
    expect((await cli(['frobnicate'], e)).code).toBe(2);
    expect((await cli(['create', '--user', 'alice', '--name', 'x'], e)).code).toBe(2);
    expect((await cli(['create', '--user', 'alice', '--name', 'x', '--scope', 'admin'], e)).code).toBe(2);
    expect((await cli(['create', '--user', 'a:b', '--name', 'x', '--scope', 'read'], e)).code).toBe(2);
    expect(
      (await cli(['create', '--user', 'alice', '--name', 'x', '--scope', 'read', '--expires', 'soon'], e))
        .code,
    ).toBe(2);
    expect((await cli(['list'], e)).code).toBe(2);
    expect((await cli(['show', 'not-an-id'], e)).code).toBe(2);
    const withPassword = await cli(['--store', 'redis://:hunter2@127.0.0.1:6379', 'list', '--all']);
    expect(withPassword.code).toBe(2);
    expect(withPassword.stderr).not.toContain('hunter2');
    // 3: not found.
    expect((await cli(['show', 'nope1234567'], e)).code).toBe(3);
    expect((await cli(['rename', 'nope1234567', 'x'], e)).code).toBe(3);
    // 4: store unavailable.
    const down = await cli(['list', '--all'], { TOKEN_STORE: `redis://127.0.0.1:${await freePort()}` });
    expect(down.code).toBe(4);
    expect(down.stderr).toMatch(/Cannot reach the token store/);
    // 5: configuration.
    expect((await cli(['list', '--all'])).code).toBe(5);
    expect((await cli(['list', '--all'], { TOKEN_STORE: 'bogus:' })).code).toBe(5);
    expect(
      (await cli(['create', '--user', 'a', '--name', 'x', '--scope', 'read'], { TOKEN_STORE: url() })).code,
    ).toBe(5);
    expect((await cli(['list', '--all'], { ...e, TOKEN_PEPPER_FILE: join(temp.dir, 'missing') })).code).toBe(
      5,
    );
    expect(
      (await cli(['revoke', 'nope1234567'], { ...e, TOKEN_AUDIT_LOG: join(temp.dir, 'no', 'such', 'dir') }))
        .code,
    ).toBe(5);
    // 6: refused by policy (the per-user cap of 100 live tokens).
    const opened = await openTokenStore(url());
    const tokens = new TokenService({ store: opened.store, hasher: sha256Hasher({ pepper: PEPPER }) });
    for (let i = 0; i < 100; i++) await tokens.create({ user: 'hoarder', name: `t${i}`, scope: 'read' });
    await opened.close();
    const refused = await cli(['create', '--user', 'hoarder', '--name', 'one more', '--scope', 'read'], e);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/most allowed/);
    expect((await cli(['revoke-user', 'hoarder'], e)).stdout).toBe('revoked 100 tokens of hoarder\n');
    // Seventeen CLI processes, one after another: a busy CI machine takes more than the default.
  }, 120_000);

  it('reads secrets from *_FILE, takes a leaked token as it is, and never prints a secret or a hash', async () => {
    expect((await cli(['init'], env())).code).toBe(0);
    const pepperFile = join(temp.dir, 'pepper');
    writeFileSync(pepperFile, `${PEPPER}\n`);
    const fromFile = await cli(['create', '--user', 'carol', '--name', 'from file', '--scope', 'write'], {
      TOKEN_STORE: url(),
      TOKEN_PEPPER_FILE: pepperFile,
    });
    expect(fromFile.code).toBe(0);
    const token = fromFile.stdout.trim();
    const proxy = await proxyOn(url());
    cleanups.push(() => proxy.close());
    expect(await proxy.use(token)).toBe(200);

    const exported = await cli(['export'], env());
    expect(exported.code).toBe(0);
    const records = exported.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(records.length).toBeGreaterThan(0);
    for (const record of records) {
      expect(Object.keys(record).sort()).toEqual(
        [
          'allowedIps',
          'createdAt',
          'createdBy',
          'expiresAt',
          'id',
          'lastUsedAt',
          'lastUsedIp',
          'name',
          'rateLimit',
          'origin',
          'requiredHeaders',
          'resources',
          'scope',
          'user',
        ].sort(),
      );
    }
    expect(exported.stdout).not.toContain(token.slice(15));

    // A token pasted from a log is revoked by its id; the output names only the id.
    const revoked = await cli(['revoke', token], env());
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe(`revoked ${token.slice(4, 15)}\n`);
    expect(revoked.stdout + revoked.stderr).not.toContain(token.slice(15));
    const wrong = await cli(['revoke', `${token.slice(0, -1)}x`], env());
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).not.toContain(token.slice(15, -1));
  });

  it('prints stats by scope, and offboards a user', async () => {
    const e = { ...env(), TOKEN_STORE: `sqlite:${join(temp.dir, 'stats.db')}` };
    expect((await cli(['init'], e)).code).toBe(0);
    const make = (user: string, scope: string, extra: string[] = []) =>
      cli(['create', '--user', user, '--name', 'x', '--scope', scope, ...extra], e);
    await make('dave', 'read');
    await make('dave', 'write', ['--expires', '5d']);
    await make('erin', 'write', [
      '--expires',
      new Date(Date.now() + 200 * 86_400_000).toISOString().slice(0, 10),
    ]);
    const stats = JSON.parse((await cli(['stats', '--json'], e)).stdout);
    expect(stats).toEqual({
      users: 2,
      byScope: {
        read: { live: 1, restricted: 0, noExpiry: 1, expiringSoon: 0, neverUsed: 1, idle: 0 },
        write: { live: 2, restricted: 0, noExpiry: 0, expiringSoon: 1, neverUsed: 2, idle: 0 },
      },
      total: { live: 3, restricted: 0, noExpiry: 1, expiringSoon: 1, neverUsed: 3, idle: 0 },
    });
    expect((await cli(['stats'], e)).stdout).toMatch(/expiring within 30 days +0 +1 +1/);
    expect((await cli(['revoke-user', 'DAVE'], e)).stdout).toBe('revoked 2 tokens of DAVE\n');
    expect((await cli(['revoke-user', 'nobody'], e)).stdout).toBe('revoked 0 tokens of nobody\n');
    expect(JSON.parse((await cli(['stats', '--json'], e)).stdout).total.live).toBe(1);
  });
});

describe('a store that does not exist', () => {
  it('is refused by every command that reads or changes tokens (exit 5, nothing created); init makes it', async () => {
    const file = join(temp.dir, 'nope', 'tokens.db');
    const e = { TOKEN_STORE: `sqlite:${file}`, TOKEN_PEPPER: PEPPER };
    for (const command of [
      ['list', '--user', 'demo'],
      ['list', '--all'],
      ['show', 'nope1234567'],
      ['rename', 'nope1234567', 'x'],
      ['revoke', 'nope1234567'],
      ['revoke-user', 'demo'],
      ['stats'],
      ['export'],
      ['create', '--user', 'demo', '--name', 'x', '--scope', 'read'],
    ]) {
      const run = await cli(command, e);
      expect([command, run.code, run.stdout]).toEqual([command, 5, '']);
      expect(run.stderr).toBe(
        `express-api-tokens: No token store at sqlite:${file}: the file ${file} does not exist. ` +
          'Check the store URL; to make a new store there, run init.\n',
      );
    }
    expect(existsSync(join(temp.dir, 'nope'))).toBe(false);

    expect((await cli(['init'], e)).code).toBe(0);
    expect(existsSync(file)).toBe(true);
    const listed = await cli(['list', '--user', 'demo'], e);
    expect(listed).toMatchObject({ code: 0, stderr: '0 tokens\n' });
    // init on an existing store leaves its tokens alone.
    expect((await cli(['create', '--user', 'demo', '--name', 'x', '--scope', 'read'], e)).code).toBe(0);
    expect((await cli(['init'], e)).code).toBe(0);
    expect((await cli(['list', '--user', 'demo'], e)).stderr).toBe('1 token\n');
  }, 60_000);

  it('is refused on PostgreSQL when the schema has no store tables, which init then creates', async () => {
    const schema = freshSchema('clinone');
    const pool = testPool();
    cleanups.push(async () => {
      await dropSchema(pool, schema);
      await pool.end();
    });
    const e = { TOKEN_STORE: `${SHARED_POSTGRES_URL}?schema=${schema}`, TOKEN_PEPPER: PEPPER };
    const refused = await cli(['list', '--all'], e);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(
      /No token store at .*: the database has no clinone_\w+\.bbt_schema_version table/,
    );
    const tables = await pool.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [
      schema,
    ]);
    expect(tables.rowCount).toBe(0);
    expect((await cli(['init'], e)).code).toBe(0);
    expect((await cli(['list', '--all'], e)).code).toBe(0);
  }, 60_000);

  it('the library still creates one by default (the example proxy’s first start)', async () => {
    const file = join(temp.dir, 'fresh', 'tokens.db');
    const opened = await openTokenStore(`sqlite:${file}`);
    await opened.close();
    expect(existsSync(file)).toBe(true);
    await expect(openTokenStore(`sqlite:${file}x`, { mustExist: true })).rejects.toMatchObject({
      name: 'StoreMissingError',
      code: 'STORE_MISSING',
    });
  });
});

describe('npm run cli (the command line from a clone, without a build)', () => {
  it('answers --help and runs a command', async () => {
    const run = (args: string[]) =>
      new Promise<Run>((done) => {
        execFile(
          'npm',
          ['run', '-s', 'cli', '--', ...args],
          {
            env: {
              PATH: process.env['PATH'],
              HOME: process.env['HOME'],
              TOKEN_STORE: `sqlite:${join(temp.dir, 'npm.db')}`,
            },
          },
          (err, stdout, stderr) =>
            done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
        );
      });
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: express-api-tokens/);
    expect(await run(['list', '--all'])).toMatchObject({ code: 5 });
    expect(await run(['init'])).toMatchObject({
      code: 0,
      stdout: `token store ready at sqlite:${join(temp.dir, 'npm.db')}\n`,
    });
  }, 60_000);
});
