import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createProgram } from '../../lib/cli/program.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import { tempDir } from '../support/temp-dir.js';

const PEPPER = 'seal-cli-pepper';
const temp = tempDir('seal-cli');
afterAll(() => temp.remove());

/** Runs the command line in this process, as `express-api-tokens …` with `env`. */
async function run(args: string[], env: Record<string, string>) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += chunk));
  stderr.on('data', (chunk) => (err += chunk));
  await createProgram({ env, stdout, stderr }, 'test').parseAsync(['node', 'express-api-tokens', ...args]);
  return { stdout: out, stderr: err };
}

describe('express-api-tokens seal', () => {
  it('seals the records written before 0.3.0 once, so their tokens work again, and leaves broken ones refused', async () => {
    const path = `${temp.dir}/tokens.db`;
    const store = new SqliteTokenStore({ path });
    const gate = createTokenGate({ store, pepper: PEPPER, cache: { maxEntries: 0 } });
    const old = await gate.tokens.create({ user: 'old', name: 'from 0.2.0', scope: 'read' });
    const changed = await gate.tokens.create({ user: 'eve', name: 'edited', scope: 'read' });
    const fine = await gate.tokens.create({ user: 'new', name: 'from 0.3.0', scope: 'read' });
    const raw = new Database(path);
    raw.prepare('UPDATE bbt_tokens SET seal = NULL WHERE id = ?').run(old.info.id);
    raw.prepare("UPDATE bbt_tokens SET scope = 'write' WHERE id = ?").run(changed.info.id);
    raw.close();
    expect(await gate.tokens.verify(old.token)).toBeNull();

    const env = { TOKEN_STORE: `sqlite:${path}`, TOKEN_PEPPER: PEPPER };
    const first = await run(['seal'], env);
    expect(first.stdout).toBe('sealed 1 token; 1 already sealed\n');
    expect(first.stderr).toMatch(/1 token has a record changed outside express-api-tokens/);
    expect(await gate.tokens.verify(old.token)).toMatchObject({ id: old.info.id });
    expect(await gate.tokens.verify(changed.token)).toBeNull();
    expect(await gate.tokens.verify(fine.token)).toMatchObject({ id: fine.info.id });
    expect((await run(['seal'], env)).stdout).toBe('sealed 0 tokens; 2 already sealed\n');
    await gate.close();
    await store.close();
  });

  it('needs the proxies’ pepper', async () => {
    await expect(run(['seal'], { TOKEN_STORE: `sqlite:${temp.dir}/other.db` })).rejects.toThrow(
      /TOKEN_PEPPER/,
    );
  });
});
