import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { Pool } from 'pg';
import { DEFAULT_STORE_TIMEOUT_MS } from '../defaults.js';
import { StoreError } from '../errors.js';
import { requireOptional } from '../internal/optional-module.js';
import { MemoryTokenStore } from './memory-token-store.js';
import { postgresNames } from './postgres-schema.js';
import { PostgresTokenStore } from './postgres-token-store.js';
import { makePrivateDir } from './private-files.js';
import { RedisTokenStore } from './redis-token-store.js';
import { SqliteTokenStore } from './sqlite-token-store.js';
import type { TokenStore } from './token-store.js';

/**
 * Options of `openTokenStore`.
 * @example
 * import { readFileSync } from 'node:fs';
 * const options: OpenTokenStoreOptions = {
 *   env: { REDIS_PASSWORD: readFileSync('/run/secrets/redis-password', 'utf8').trim() },
 *   onError: (error) => console.error(`token store: ${error.message}`),
 *   connectTimeoutMs: 10_000,
 * };
 * const opened = await openTokenStore('redis://redis.internal:6379', options);
 */
export interface OpenTokenStoreOptions {
  /**
   * Where passwords missing from the URL are read: `REDIS_PASSWORD`, `REDIS_SENTINEL_PASSWORD`,
   * `PGPASSWORD`. Default `process.env`.
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** Connection errors of the clients it creates, after startup. Messages never hold a password. Default: ignored. */
  onError?: (error: Error) => void;
  /** Longest wait for Redis or PostgreSQL at startup. Default 5,000 ms. */
  connectTimeoutMs?: number;
  /**
   * Refuse a store that does not exist yet instead of creating it: a missing SQLite file, or
   * PostgreSQL without the store's tables, rejects with a `StoreMissingError` (code
   * `STORE_MISSING`). For tools that read or change tokens, where a mistyped path must not pass
   * for an empty store. Redis and `memory:` always exist. Default false (create what is missing).
   */
  mustExist?: boolean;
}

/**
 * `openTokenStore(url, { mustExist: true })` found no store there: nothing was created.
 * @example
 * try {
 *   await openTokenStore('sqlite:./data/tokens.db', { mustExist: true });
 * } catch (err) {
 *   if (err instanceof StoreMissingError) console.error(err.message); // names the URL
 * }
 */
export class StoreMissingError extends Error {
  /** `'StoreMissingError'`. */
  override readonly name = 'StoreMissingError';
  /** `'STORE_MISSING'`. */
  readonly code = 'STORE_MISSING';
}

/**
 * A store opened from a URL, with what it created; `close()` releases both.
 * @example
 * const opened: OpenedTokenStore = await openTokenStore('sqlite:./data/tokens.db');
 * const gate = createTokenGate({ store: opened.store });
 * process.once('SIGTERM', async () => {
 *   await gate.close();
 *   await opened.close();
 * });
 */
export interface OpenedTokenStore {
  /** The store, ready for `createTokenGate({ store })`. */
  store: TokenStore;
  /** The URL with any password replaced by `***`: safe to print and log. */
  url: string;
  /** Closes the store and the client or pool it created. */
  close(): Promise<void>;
}

/** What each scheme's opener gives; `openTokenStore` adds the printable URL. */
type Opened = Omit<OpenedTokenStore, 'url'>;

/** Fail a command at once while Redis is away (docs/operations.md, "Redis in production"). */
const REDIS_FAIL_FAST = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 1_000,
  connectTimeout: 1_000,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
} satisfies RedisOptions;

const SCHEMES =
  'memory:, sqlite:<path>, redis://, rediss://, redis+sentinel://, redis+cluster://, postgres://';

/**
 * A URL fit for messages and logs: any password replaced by `***`.
 * @example
 * redactUrl('redis://:s3cret@cache:6379') // 'redis://:***@cache:6379'
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*):([^@/]*)@/i, '$1$2:***@');
}

/**
 * Opens a token store from one URL, creating the Redis client or PostgreSQL pool with
 * fail-fast settings (ioredis and pg are loaded only when a URL needs them):
 * - `memory:`: a `MemoryTokenStore` (gone on restart);
 * - `sqlite:<path>` (relative or absolute; `sqlite:///abs/path` too): a `SqliteTokenStore`,
 *   creating the file's directory;
 * - `redis://[:password@]host:port[/db]`, `rediss://…` (TLS), `redis+sentinel://[:password@]host:port[,host:port…]/<master>[/db]`,
 *   `redis+cluster://[:password@]host:port[,host:port…]`: a `RedisTokenStore` (`?keyPrefix=`);
 * - `postgres://…` or `postgresql://…`: a `PostgresTokenStore` (`?schema=`, `?tablePrefix=`),
 *   its tables created or checked before this resolves.
 * Passwords come from the URL or the environment only, and never appear in errors.
 * @example
 * const { store, close } = await openTokenStore(process.env.TOKEN_STORE ?? 'sqlite:./data/tokens.db');
 * const gate = createTokenGate({ store });
 */
export async function openTokenStore(
  url: string,
  options: Readonly<OpenTokenStoreOptions> = {},
): Promise<OpenedTokenStore> {
  if (typeof url !== 'string' || url.trim() === '')
    throw new TypeError(`A token store URL is one of ${SCHEMES}`);
  return { ...(await openByScheme(url, options)), url: redactUrl(url) };
}

async function openByScheme(url: string, options: Readonly<OpenTokenStoreOptions>): Promise<Opened> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'memory': {
      const store = new MemoryTokenStore();
      return { store, close: () => store.close() };
    }
    case 'sqlite':
      return openSqlite(url, options.mustExist === true);
    case 'redis':
    case 'rediss':
    case 'redis+sentinel':
    case 'redis+cluster':
      return openRedis(url, scheme, options);
    case 'postgres':
    case 'postgresql':
      return openPostgres(url, options);
    default:
      throw new TypeError(`Unsupported token store URL ${redactUrl(url)}: use one of ${SCHEMES}`);
  }
}

function openSqlite(url: string, mustExist: boolean): Opened {
  let path = url.slice('sqlite:'.length);
  if (path.startsWith('//')) path = path.slice(2); // sqlite:///abs/path
  if (path === '') throw new TypeError('A sqlite: URL needs a file path, e.g. sqlite:./data/tokens.db');
  const file = resolve(path);
  if (mustExist && !existsSync(file))
    throw new StoreMissingError(`No token store at ${url}: the file ${file} does not exist.`);
  makePrivateDir(dirname(file)); // 0700: only the proxy's user may list or read it
  const store = new SqliteTokenStore({ path: file });
  return { store, close: () => store.close() };
}

/** An error that keeps the message and code of what failed, without anything that could hold a password. */
function sanitized(err: unknown, secrets: Array<string | undefined>): Error {
  let message = err instanceof Error ? err.message : String(err);
  for (const secret of secrets) if (secret) message = message.split(secret).join('***');
  const clean = new Error(message);
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') Object.assign(clean, { code });
  return clean;
}

/** Splits `host:port,host:port` into nodes (default port 6379, `[v6]:port` allowed). */
function hostList(hosts: string, url: string): Array<{ host: string; port: number }> {
  return hosts.split(',').map((entry) => {
    const match = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(entry.trim());
    if (!match) throw new TypeError(`Bad host list in ${redactUrl(url)}: '${entry}'`);
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2] ?? 6379) };
  });
}

async function openRedis(
  url: string,
  scheme: string,
  options: Readonly<OpenTokenStoreOptions>,
): Promise<Opened> {
  const env = options.env ?? process.env;
  const ioredis = requireOptional<typeof import('ioredis')>('ioredis', `The token store ${scheme}:// URL`);
  // host lists do not parse as URLs: take the parts apart by hand.
  const parts = /^[^:]+:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/.exec(url);
  if (!parts) throw new TypeError(`Bad token store URL ${redactUrl(url)}`);
  const [, rawUser, rawPassword, hosts = '', path = '', query = ''] = parts;
  const params = new URLSearchParams(query);
  const username = rawUser ? decodeURIComponent(rawUser) : undefined;
  const password = rawPassword ? decodeURIComponent(rawPassword) : env['REDIS_PASSWORD'] || undefined;
  const sentinelPassword = env['REDIS_SENTINEL_PASSWORD'] || undefined;
  const keyPrefix = params.get('keyPrefix') ?? undefined;
  const auth = { ...(username ? { username } : {}), ...(password ? { password } : {}) };
  const segments = path.split('/').filter(Boolean);
  const db = (index: number) => (segments[index] === undefined ? {} : { db: Number(segments[index]) });

  let client: Redis | Cluster;
  if (scheme === 'redis+cluster') {
    client = new ioredis.Cluster(hostList(hosts, url), {
      enableOfflineQueue: false,
      clusterRetryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
      redisOptions: { ...REDIS_FAIL_FAST, ...auth },
    });
  } else if (scheme === 'redis+sentinel') {
    const name = segments[0];
    if (!name) throw new TypeError(`A redis+sentinel:// URL names the master: ${redactUrl(url)}/<master>`);
    client = new ioredis.Redis({
      sentinels: hostList(hosts, url),
      name,
      ...db(1),
      ...auth,
      ...(sentinelPassword ? { sentinelPassword } : {}),
      ...REDIS_FAIL_FAST,
    });
  } else {
    const target = new URL(url);
    target.search = '';
    if (!rawPassword) target.password = '';
    client = new ioredis.Redis(target.href, { ...REDIS_FAIL_FAST, ...(rawPassword ? {} : auth) });
  }
  const secrets = [password, sentinelPassword];
  const startup: Error[] = [];
  client.on('error', (err: unknown) => {
    const clean = sanitized(err, secrets);
    startup.push(clean);
    options.onError?.(clean);
  });
  const close = async () => {
    await client.quit().catch(() => client.disconnect());
  };
  try {
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(
        () => reject(startup.at(-1) ?? new Error('no answer')),
        options.connectTimeoutMs ?? 5_000,
      );
      client.once('ready', () => {
        clearTimeout(timer);
        resolveReady();
      });
    });
  } catch (err) {
    client.disconnect();
    throw new StoreError(
      `Cannot reach the token store at ${redactUrl(url)}: ${sanitized(err, secrets).message}`,
    );
  }
  const store = new RedisTokenStore({ redis: client, ...(keyPrefix ? { keyPrefix } : {}) });
  return { store, close };
}

async function openPostgres(url: string, options: Readonly<OpenTokenStoreOptions>): Promise<Opened> {
  const env = options.env ?? process.env;
  const pg = requireOptional<typeof import('pg')>('pg', 'The token store postgres:// URL');
  const target = new URL(url);
  const schema = target.searchParams.get('schema') ?? undefined;
  const tablePrefix = target.searchParams.get('tablePrefix') ?? undefined;
  target.searchParams.delete('schema');
  target.searchParams.delete('tablePrefix');
  const password = target.password ? decodeURIComponent(target.password) : env['PGPASSWORD'] || undefined;
  const pool: Pool = new pg.Pool({
    connectionString: target.href,
    ...(password ? { password } : {}),
    connectionTimeoutMillis: 1_000,
    query_timeout: DEFAULT_STORE_TIMEOUT_MS,
    keepAlive: true,
    max: 10,
  });
  const secrets = [password];
  // An idle connection that breaks (a server restart) must never crash the process.
  pool.on('error', (err) => options.onError?.(sanitized(err, secrets)));
  let store: PostgresTokenStore;
  try {
    store = new PostgresTokenStore({
      pool,
      ...(schema ? { schema } : {}),
      ...(tablePrefix ? { tablePrefix } : {}),
    });
    if (options.mustExist === true) await requireTables(pool, { schema, tablePrefix }, url);
    await Promise.race([
      store.ensureSchema(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('no answer')), options.connectTimeoutMs ?? 5_000).unref(),
      ),
    ]);
  } catch (err) {
    await pool.end().catch(() => {});
    if (err instanceof TypeError || err instanceof StoreMissingError) throw err;
    // Our own refusals (a newer schema) say it all; a driver's error is reduced to its message.
    const reason = err instanceof StoreError && err.cause !== undefined ? err.cause : err;
    throw new StoreError(
      `Cannot open the token store at ${redactUrl(url)}: ${sanitized(reason, secrets).message}`,
    );
  }
  return {
    store,
    async close() {
      await store.close();
      await pool.end();
    },
  };
}

/** Rejects unless the store's version table exists (the first thing `ensureSchema()` makes). */
async function requireTables(
  pool: Pool,
  names: { schema: string | undefined; tablePrefix: string | undefined },
  url: string,
): Promise<void> {
  const n = postgresNames({
    ...(names.schema ? { schema: names.schema } : {}),
    ...(names.tablePrefix ? { tablePrefix: names.tablePrefix } : {}),
  });
  const found = await pool.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [n.version]);
  if (found.rows[0]?.t == null)
    throw new StoreMissingError(
      `No token store at ${redactUrl(url)}: the database has no ${n.versionName} table.`,
    );
}
