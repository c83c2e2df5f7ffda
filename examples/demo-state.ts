import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { CreateTokenInput, TokenGate } from '../lib/index.js';

/**
 * What the demo keeps across restarts of `npm start`, so that every command a previous start
 * printed still works: the stand-in Bitbucket's repository and access tokens (hashes only), and
 * the secrets the demo makes up when the environment gives none (pepper, page-session secret,
 * access-token-mode encryption key). Never a token in clear: the demo tokens are printed once.
 *
 * Where: `DATA_DIR`, else the directory of a `sqlite:` token store (`./data` by default). With a
 * memory, Redis or PostgreSQL store and no `DATA_DIR`, a temp directory removed on close.
 * Directories are 0700, files 0600.
 */
export interface DemoState {
  /** The directory that holds it all. */
  dir: string;
  /** False for a temp directory (nothing survives the process). */
  kept: boolean;
  /** True when this start made the secrets (a first start, or a wiped data directory). */
  fresh: boolean;
  /** Where the stand-in Bitbucket keeps its repository and access tokens. */
  upstreamRoot: string;
  secrets: DemoSecrets;
  /** Removes a temp directory (a kept one stays). */
  close(): void;
}

/** The demo's own secrets (base64), used only where the environment sets none. */
export interface DemoSecrets {
  /** Empty for a store an older demo (which ran without a pepper) made: its tokens keep working. */
  pepper: string;
  sessionSecret: string;
  encryptionKey: string;
}

const SECRETS_FILE = 'demo-secrets.json';

/** The file of a `sqlite:` store URL, else undefined. */
function sqliteFile(storeUrl: string): string | undefined {
  if (!storeUrl.startsWith('sqlite:')) return undefined;
  let path = storeUrl.slice('sqlite:'.length);
  if (path.startsWith('//')) path = path.slice(2);
  return resolve(path);
}

function stateDir(env: Readonly<Record<string, string | undefined>>, storeUrl: string): string | undefined {
  if (env['DATA_DIR']) return resolve(env['DATA_DIR']);
  const file = sqliteFile(storeUrl);
  return file === undefined ? undefined : dirname(file);
}

function newSecrets(): DemoSecrets {
  const secret = () => randomBytes(32).toString('base64');
  return { pepper: secret(), sessionSecret: secret(), encryptionKey: secret() };
}

function readSecrets(file: string): Partial<DemoSecrets> | undefined {
  if (!existsSync(file)) return undefined;
  chmodSync(file, 0o600); // a copied file may be wider
  const read = JSON.parse(readFileSync(file, 'utf8')) as Partial<DemoSecrets>;
  if (typeof read.pepper !== 'string' || typeof read.sessionSecret !== 'string')
    throw new Error(
      `${file} is not the demo's secrets file: remove it to start over (old demo tokens stop working).`,
    );
  return read;
}

/** Opens (or makes) the demo's state for a proxy whose tokens live at `storeUrl`. */
export function openDemoState(
  env: Readonly<Record<string, string | undefined>>,
  storeUrl: string,
): DemoState {
  const wanted = stateDir(env, storeUrl);
  const kept = wanted !== undefined;
  const dir = wanted ?? mkdtempSync(join(tmpdir(), 'express-api-tokens-demo-'));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700); // ./data made by an older demo was 0755
  const file = join(dir, SECRETS_FILE);
  const found = kept ? readSecrets(file) : undefined;
  const secrets: DemoSecrets = { ...newSecrets(), ...found };
  // A token store from before the demo kept secrets (0.2.0) was filled without a pepper.
  const older = sqliteFile(storeUrl);
  if (found === undefined && older !== undefined && existsSync(older)) secrets.pepper = '';
  // Written when made, or when a newer demo needs one more (written atomically, 0600).
  if (kept && Object.keys(found ?? {}).length < Object.keys(secrets).length) {
    writeFileSync(`${file}.new`, JSON.stringify(secrets, null, 2), { mode: 0o600 });
    renameSync(`${file}.new`, file);
  }
  return {
    dir,
    kept,
    fresh: found === undefined,
    upstreamRoot: join(dir, 'demo-bitbucket'),
    secrets,
    close() {
      if (!kept) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The demo's two tokens: made at the first start, kept by later ones. */
export interface DemoTokens {
  /** The secret, when this start made the token (printed once); undefined when an earlier start did. */
  readToken: string | undefined;
  writeToken: string | undefined;
  /** Ids of the tokens an earlier start made that still work. */
  keptIds: string[];
  /** Ids of earlier demo tokens revoked because they do not work in this mode. */
  replacedIds: string[];
}

const DEMO_TOKEN_NAMES = { read: 'demo read token', write: 'demo write token' } as const;

/**
 * The demo user's read and write tokens: those of an earlier start when they still work (their
 * secrets are not stored, so they are not printed again), a new one for each that is gone.
 * `renew` (`DEMO_NEW_TOKENS=1`) revokes the kept ones and makes new ones. `works` says whether a
 * kept token works in this start's mode (one made in header mode has no Bitbucket access token
 * for access-token mode): those that do not are revoked and made anew.
 */
export async function demoTokens(
  tokens: TokenGate['tokens'],
  user: string,
  renew: boolean,
  extra: Partial<CreateTokenInput> = {},
  works: (id: string) => Promise<boolean> = async () => true,
): Promise<DemoTokens> {
  const live = await tokens.list(user);
  const result: DemoTokens = { readToken: undefined, writeToken: undefined, keptIds: [], replacedIds: [] };
  for (const scope of ['read', 'write'] as const) {
    const name = DEMO_TOKEN_NAMES[scope];
    let earlier = live.filter((t) => t.name === name);
    if (!renew)
      for (const old of earlier)
        if (!(await works(old.id))) {
          await tokens.revoke(old.id);
          result.replacedIds.push(old.id);
          earlier = earlier.filter((t) => t !== old);
        }
    if (renew) for (const old of earlier) await tokens.revoke(old.id);
    if (!renew && earlier.length > 0) {
      result.keptIds.push(...earlier.map((t) => t.id));
      continue;
    }
    const made = await tokens.create({ ...extra, user, name, scope });
    if (scope === 'read') result.readToken = made.token;
    else result.writeToken = made.token;
  }
  return result;
}

/**
 * The demo's SQLite store files made 0600 like the rest of its state (SQLite gives its `-wal`
 * and `-shm` files the database file's mode, so later ones follow).
 */
export function protectSqliteFiles(state: DemoState, storeUrl: string): void {
  const path = sqliteFile(storeUrl);
  if (!state.kept || path === undefined) return;
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
}

/**
 * The welcome text's lines about the state and the demo tokens: where the state is kept, the
 * tokens this start made (printed once), and for those an earlier start made, that they still
 * work and where new ones come from. Starts with the line after the title, ends with a blank one.
 */
export function demoTokenLines(demo: DemoTokens & { state: DemoState }, user: string): string[] {
  const { readToken, writeToken, keptIds, replacedIds, state } = demo;
  const made = [
    ...(readToken ? [`Read token for "${user}":  ${readToken}`] : []),
    ...(writeToken ? [`Write token for "${user}": ${writeToken}`] : []),
  ];
  const kept =
    keptIds.length === 0
      ? []
      : [
          `The demo tokens printed by an earlier start still work (ids ${keptIds.join(', ')}), and so do the`,
          'commands it printed and the clones they made. Their secrets are not stored, so they are not shown',
          'again. New tokens: the token page or the management API (both below), or DEMO_NEW_TOKENS=1 npm start',
          '(which revokes the kept demo tokens). Replace <read token> and <write token> below with yours.',
        ];
  const replaced =
    replacedIds.length === 0
      ? []
      : [
          `The demo tokens an earlier start made in the other mode (ids ${replacedIds.join(', ')}) do not work in this`,
          'one: they are revoked, and the new ones below replace them.',
          '',
        ];
  return [
    state.kept
      ? `The demo keeps its repository and secrets in ${state.dir} (delete it to start over).`
      : "The demo's repository and secrets are gone when it stops (set DATA_DIR to keep them).",
    '',
    ...replaced,
    ...made,
    ...(made.length > 0 && kept.length > 0 ? [''] : []),
    ...kept,
  ];
}
