import { openSync, readFileSync, writeSync } from 'node:fs';
import { userInfo } from 'node:os';
import { StoreError } from '../errors.js';
import type { AuditEvent, EventListener } from '../events.js';
import {
  type OpenedTokenStore,
  openTokenStore,
  redactUrl,
  StoreMissingError,
} from '../stores/open-token-store.js';
import type { ExpiryPolicy } from '../tokens/expiry-policy.js';
import { resolveHasher, type TokenHasher } from '../tokens/hashers.js';
import { CliError, EXIT } from './exit-codes.js';

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Variables that may hold a secret, read from `NAME` or from the file named by `NAME_FILE`
 * (Docker and Kubernetes secrets), never from the command line.
 */
const SECRETS = [
  'TOKEN_STORE',
  'TOKEN_PEPPER',
  'REDIS_PASSWORD',
  'REDIS_SENTINEL_PASSWORD',
  'PGPASSWORD',
  'ENCRYPTION_KEYS',
  'BITBUCKET_ADMIN_TOKEN',
];

/** The environment with every `NAME_FILE` read into `NAME`. */
export function resolveEnv(env: Env): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (const name of SECRETS) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (env[name]) throw new CliError(EXIT.CONFIG, `Set ${name} or ${name}_FILE, not both.`);
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'unreadable';
      throw new CliError(EXIT.CONFIG, `Cannot read ${name}_FILE (${file}): ${code}.`);
    }
  }
  return out;
}

/** The store URL from `--store` (which must not hold a password) or `TOKEN_STORE`. */
export function storeUrl(option: string | undefined, env: Env): string {
  if (option !== undefined) {
    if (redactUrl(option) !== option || /[?&]password=/i.test(option))
      throw new CliError(
        EXIT.USAGE,
        '--store must not hold a password (shell history and the process list would keep it): ' +
          'set REDIS_PASSWORD or PGPASSWORD (or their *_FILE), or put the whole URL in TOKEN_STORE.',
      );
    return option;
  }
  const url = env['TOKEN_STORE'];
  if (!url)
    throw new CliError(
      EXIT.CONFIG,
      'No token store: give --store URL or set TOKEN_STORE (redis://…, postgres://…, sqlite:<file>).',
    );
  return url;
}

/**
 * Opens the store; an unreachable store is exit 4, a bad URL, a missing driver or (unless
 * `create`, which only `init` sets) a store that does not exist exit 5: a mistyped path must
 * never read as "no tokens".
 */
export async function openStore(url: string, env: Env, create = false): Promise<OpenedTokenStore> {
  try {
    return await openTokenStore(url, { env, connectTimeoutMs: 5_000, mustExist: !create });
  } catch (err) {
    if (err instanceof StoreError) throw err;
    if (err instanceof StoreMissingError)
      throw new CliError(
        EXIT.CONFIG,
        `${err.message} Check the store URL; to make a new store there, run init.`,
      );
    throw new CliError(EXIT.CONFIG, (err as Error).message);
  }
}

/**
 * The hasher the proxies use: `TOKEN_HASHER` (`sha256`, the default, or `bcrypt`) with
 * `TOKEN_PEPPER`. Only `create`, `identify`, `revoke-leaked` and `seal` need it; without the
 * proxies' pepper a sha256 token made would never verify (and one looked up never match), so a
 * missing pepper is an error unless `--no-pepper` says it is meant.
 */
export function hasherFrom(env: Env, pepperRequired: boolean): TokenHasher {
  const kind = env['TOKEN_HASHER'] || 'sha256';
  if (kind !== 'sha256' && kind !== 'bcrypt')
    throw new CliError(EXIT.CONFIG, `TOKEN_HASHER must be sha256 or bcrypt, not '${kind}'.`);
  const pepper = env['TOKEN_PEPPER'] || undefined;
  if (kind === 'sha256' && pepper === undefined && pepperRequired)
    throw new CliError(
      EXIT.CONFIG,
      'Set TOKEN_PEPPER (or TOKEN_PEPPER_FILE) to the pepper of your proxies, or pass --no-pepper if they run without one.',
    );
  try {
    return resolveHasher(kind, pepper);
  } catch (err) {
    throw new CliError(EXIT.CONFIG, (err as Error).message);
  }
}

function days(env: Env, name: string): number | undefined {
  const value = env[name];
  if (!value) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1)
    throw new CliError(EXIT.CONFIG, `${name} must be a whole number of days.`);
  return Number(value);
}

/** The proxies' expiry policy, from the same variables the example proxy reads. */
export function expiryFrom(env: Env): ExpiryPolicy {
  const maxDays = days(env, 'TOKEN_MAX_DAYS');
  const defaultDays = days(env, 'TOKEN_DEFAULT_DAYS');
  return {
    ...(maxDays === undefined ? {} : { maxDays }),
    ...(defaultDays === undefined ? {} : { defaultDays }),
  };
}

/**
 * Who the audit events name as the actor: `cli/<operating-system user>` (the one behind sudo
 * when there is one). A slash cannot appear in a Bitbucket user name, so it never passes for one.
 */
export function cliActor(env: Env): string {
  let name = env['SUDO_USER'];
  if (!name) {
    try {
      name = userInfo().username;
    } catch {
      name = env['USER'] || env['LOGNAME'] || 'unknown';
    }
  }
  return `cli/${name.replace(/[:\s\p{Cc}]/gu, '_')}`;
}

/**
 * The CLI's `onEvent`: each event as one JSON line appended to `file` (`-` for stderr). A
 * proxy logs only what happens in its own process, so a change made here is in this log only.
 * The file is opened before anything changes: an unwritable log stops the command first.
 */
export function auditLog(file: string | undefined): EventListener {
  if (file === undefined || file === '') return () => {};
  let fd: number;
  try {
    fd = file === '-' ? 2 : openSync(file, 'a', 0o600);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'unwritable';
    throw new CliError(EXIT.CONFIG, `Cannot open the audit log ${file}: ${code}.`);
  }
  return (event: AuditEvent) => {
    writeSync(fd, `${JSON.stringify(event)}\n`);
  };
}
