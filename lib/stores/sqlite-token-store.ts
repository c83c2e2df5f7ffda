import { DEFAULT_TABLE_PREFIX } from '../defaults.js';
import { StoreError, TokenGateError } from '../errors.js';
import { installedVersion, requireOptional } from '../internal/optional-module.js';
import { fail, integer, object, oneOf, type Shape, string, withMethods } from '../internal/options.js';
import type { TokenChanges, TokenRecord } from '../model.js';
import { foldName } from '../validate.js';
import { createPrivateFile } from './private-files.js';
import { revokedIdOf } from './revocation-message.js';
import {
  changedColumns,
  fromRow,
  IDENTIFIER,
  type SqlDialect,
  searchWhere,
  TOKEN_COLUMNS,
  toRow,
} from './sql-record.js';
import { migrateSqlite, sqliteNames } from './sqlite-schema.js';
import type { SqliteDatabaseLike, SqliteStatementLike } from './sqlite-types.js';
import {
  type CountLimit,
  EXPIRED_RETENTION_MS,
  type RevocationListener,
  type TokenQuery,
  type TokenSearchPage,
  type TokenStore,
  userGroup,
  type WindowCount,
} from './token-store.js';

export type { SqliteDatabaseLike, SqliteStatementLike } from './sqlite-types.js';

/**
 * Options of `SqliteTokenStore`: a `path`, or an open `database`.
 * @example
 * const options: SqliteTokenStoreOptions = { path: '/var/lib/proxy/tokens.db', pollIntervalMs: 100 };
 * const store = new SqliteTokenStore(options);
 */
export interface SqliteTokenStoreOptions {
  /**
   * Path of the database file, created when missing with mode 0600, whatever the umask (its
   * directory must exist). Give `path` or `database`.
   */
  path?: string;
  /** An open better-sqlite3 `Database` you own; `close()` leaves it open. Give `path` or `database`. */
  database?: SqliteDatabaseLike;
  /** Prefix of the store's table and index names. Default `'bbt_'`. */
  tablePrefix?: string;
  /**
   * How often subscribers read the revocation log that every process on the file writes, in
   * ms. Revocations by other processes reach this one's cache within this time. Default 250.
   */
  pollIntervalMs?: number;
  /** How long a write waits for another process's write lock (it blocks this process meanwhile). Default 1,000 ms. */
  busyTimeoutMs?: number;
  /**
   * `'full'` (default): every token write and revocation is on disk (fsync) when its promise
   * resolves, so it survives a power cut; failure counts, claims and last-use times are written
   * without fsync. `'normal'`: nothing is fsynced at commit; a write survives a crash of the
   * process (kill -9), not of the machine; a revocation lost that way would come back.
   */
  synchronous?: 'full' | 'normal';
}

const OPTIONS: Shape<SqliteTokenStoreOptions> = {
  path: string(),
  database: withMethods(['prepare', 'exec', 'pragma', 'close'], 'an open better-sqlite3 Database'),
  tablePrefix: string({ maxLength: 40, pattern: IDENTIFIER }),
  pollIntervalMs: integer(10, 60_000),
  busyTimeoutMs: integer(0, 60_000),
  synchronous: oneOf(['full', 'normal']),
};

/** How long the revocation log keeps an entry; a subscriber further behind than this starts over (`'*'`). */
const REVOCATION_LOG_MS = 3_600_000;
/** Least time between two clean-ups of expired rows, lapsed windows and claims, and old log entries. */
const HOUSEKEEPING_MS = 60_000;

const DIALECT: SqlDialect = {
  placeholder: () => '?',
  contains: (column, placeholder) => `instr(${column}, ${placeholder}) > 0`,
};

type BetterSqlite3 = new (path: string) => SqliteDatabaseLike;

type Statements = Record<
  | 'put'
  | 'get'
  | 'list'
  | 'touch'
  | 'remove'
  | 'logRevocation'
  | 'revocationsAfter'
  | 'lastRevocation'
  | 'increment'
  | 'failureCount'
  | 'claim'
  | 'putValue'
  | 'getValue'
  | 'takeValue'
  | 'purgeValues'
  | 'expiring'
  | 'purgeTokens'
  | 'purgeFailures'
  | 'purgeClaims'
  | 'purgeLog'
  | 'groupLive'
  | 'groupCreate'
  | 'groupAdd'
  | 'groupRelease'
  | 'groupOf'
  | 'releasePurged',
  SqliteStatementLike
>;

/**
 * Refuses the better-sqlite3 majors that crash the process on this Node.js instead of failing:
 * 13 needs Node.js 22 (on 20 it crashes at load); 12 aborts Node.js 24 whenever the garbage
 * collector frees one of its statements (Node 24 checks cleanup hooks that 12's native objects
 * remove too late). So: 12 on Node.js 20, 12 or 13 on 22, 13 on 24 and later.
 */
export function assertSupportedBetterSqlite3(version: string | undefined, nodeVersion: string): void {
  if (version === undefined) return;
  const major = Number.parseInt(version, 10);
  const node = Number.parseInt(nodeVersion, 10);
  if (major >= 13 && node < 22) {
    throw new Error(
      `better-sqlite3 ${version} needs Node.js 22 or newer and crashes on Node.js ${nodeVersion}: ` +
        'npm install better-sqlite3@12',
    );
  }
  if (major < 13 && node >= 24) {
    throw new Error(
      `better-sqlite3 ${version} aborts Node.js ${nodeVersion} when it frees a statement: ` +
        'npm install better-sqlite3@13',
    );
  }
}

function loadBetterSqlite3(): BetterSqlite3 {
  return requireOptional<BetterSqlite3>('better-sqlite3', 'SqliteTokenStore');
}

/**
 * Tokens in one SQLite file (better-sqlite3, WAL): durable, with nothing to run. Several
 * processes on one host may share the file (a Node cluster, PM2): revocations made by any of
 * them reach the others' subscribers within `pollIntervalMs`, and failure counts and claims
 * are shared. The schema is created, or upgraded, when the file is opened.
 *
 * better-sqlite3 is an optional peer dependency (`npm install better-sqlite3`: version 12 on
 * Node.js 20, 13 on Node.js 24; either on 22). Its calls are synchronous and short; every one that fails rejects with a
 * `StoreError`.
 * @example
 * const store = new SqliteTokenStore({ path: './data/tokens.db' });
 * const gate = createTokenGate({ store });
 */
export class SqliteTokenStore implements TokenStore {
  readonly kind = 'sqlite';
  private readonly db: SqliteDatabaseLike;
  private readonly ownsDatabase: boolean;
  private readonly full: boolean;
  private readonly pollIntervalMs: number;
  private readonly listeners = new Set<RevocationListener>();
  private readonly feedListeners = new Set<(connected: boolean) => void>();
  private readonly sql: Statements;
  private readonly tables: ReturnType<typeof sqliteNames>;
  private timer: NodeJS.Timeout | undefined;
  private cursor = 0;
  private feedFailing = false;
  private lastHousekeeping = 0;
  private closed = false;

  constructor(options: Readonly<SqliteTokenStoreOptions>) {
    object(OPTIONS)(options, '');
    if ((options.path === undefined) === (options.database === undefined))
      fail('path', 'or `database` is required, and only one of them');
    assertSupportedBetterSqlite3(installedVersion('better-sqlite3'), process.versions.node);
    const prefix = options.tablePrefix ?? DEFAULT_TABLE_PREFIX;
    this.full = (options.synchronous ?? 'full') === 'full';
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.ownsDatabase = options.database === undefined;
    const file = options.path ?? options.database!.name;
    try {
      if (options.database !== undefined) this.db = options.database;
      else {
        const Database = loadBetterSqlite3();
        // Created 0600 before SQLite opens it; its -wal and -shm files take the same mode.
        if (options.path !== '' && options.path !== ':memory:') createPrivateFile(options.path!);
        this.db = new Database(options.path!);
      }
    } catch (err) {
      if (err instanceof Error && /npm install/.test(err.message)) throw err;
      throw new StoreError(`Cannot open the token database ${file}.`, { cause: err });
    }
    try {
      // WAL: readers never wait for the writer, and processes share the file safely.
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 1_000}`);
      this.db.pragma(`synchronous = ${this.full ? 'FULL' : 'NORMAL'}`);
      migrateSqlite(this.db, prefix, file);
      this.tables = sqliteNames(prefix);
      this.sql = this.prepareAll();
    } catch (err) {
      if (this.ownsDatabase) this.db.close();
      if (err instanceof TokenGateError) throw err;
      throw new StoreError(`Cannot open the token database ${file}.`, { cause: err });
    }
  }

  private prepareAll(): Statements {
    const t = this.tables;
    const live = '(expires_at IS NULL OR expires_at > ?)';
    const statements: Record<keyof Statements, string> = {
      put: `INSERT OR REPLACE INTO ${t.tokens} (${TOKEN_COLUMNS.join(', ')}, count_group) VALUES (${TOKEN_COLUMNS.map(() => '?').join(', ')}, ?)`,
      get: `SELECT * FROM ${t.tokens} WHERE id = ? AND ${live}`,
      list: `SELECT * FROM ${t.tokens} WHERE user_key = ? AND ${live} ORDER BY created_at DESC, id DESC`,
      touch: `UPDATE ${t.tokens} SET last_used_at = ?, last_used_ip = ? WHERE id = ? AND ${live}`,
      remove: `DELETE FROM ${t.tokens} WHERE id = ? RETURNING expires_at, count_group`,
      logRevocation: `INSERT INTO ${t.revocations} (id, at) VALUES (?, ?)`,
      revocationsAfter: `SELECT seq, id FROM ${t.revocations} WHERE seq > ? ORDER BY seq LIMIT 500`,
      lastRevocation: `SELECT COALESCE(MAX(seq), 0) AS seq FROM ${t.revocations}`,
      increment: `INSERT INTO ${t.failures} (key, count, until) VALUES (?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET
          count = CASE WHEN until > ? THEN count + excluded.count ELSE excluded.count END,
          until = CASE WHEN until > ? THEN until ELSE excluded.until END
        RETURNING count, until`,
      failureCount: `SELECT count FROM ${t.failures} WHERE key = ? AND until > ?`,
      claim: `INSERT INTO ${t.claims} (key, until) VALUES (?, ?)
        ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE until <= ?
        RETURNING 1 AS won`,
      putValue: `INSERT OR REPLACE INTO ${t.values} (key, value, until) VALUES (?, ?, ?)`,
      getValue: `SELECT value FROM ${t.values} WHERE key = ? AND until > ?`,
      takeValue: `DELETE FROM ${t.values} WHERE key = ? RETURNING value, until`,
      purgeValues: `DELETE FROM ${t.values} WHERE until <= ?`,
      expiring: `SELECT * FROM ${t.tokens} WHERE expires_at > ? AND expires_at <= ? ORDER BY expires_at, id LIMIT ?`,
      purgeTokens: `DELETE FROM ${t.tokens} WHERE expires_at <= ?`,
      purgeFailures: `DELETE FROM ${t.failures} WHERE until <= ?`,
      purgeClaims: `DELETE FROM ${t.claims} WHERE until <= ?`,
      purgeLog: `DELETE FROM ${t.revocations} WHERE at <= ?`,
      groupLive: `SELECT live FROM ${t.groups} WHERE group_key = ?`,
      groupCreate: `INSERT INTO ${t.groups} (group_key, live) VALUES (?, ?)`,
      groupAdd: `UPDATE ${t.groups} SET live = live + ? WHERE group_key = ?`,
      groupRelease: `UPDATE ${t.tokens} SET count_group = NULL WHERE count_group = ? AND expires_at <= ?`,
      groupOf: `SELECT count_group FROM ${t.tokens} WHERE id = ?`,
      // Rows about to be purged stop counting first (their group was not full since they expired).
      releasePurged: `UPDATE ${t.groups} SET live = live - (SELECT count(*) FROM ${t.tokens} AS t
          WHERE t.count_group = ${t.groups}.group_key AND t.expires_at <= ?)
        WHERE group_key IN (SELECT count_group FROM ${t.tokens} WHERE expires_at <= ? AND count_group IS NOT NULL)`,
    };
    return Object.fromEntries(
      Object.entries(statements).map(([key, source]) => [key, this.db.prepare(source)]),
    ) as Statements;
  }

  async put(record: TokenRecord): Promise<void> {
    this.guard(() => {
      this.counted(record, userGroup(record.user), null);
      this.housekeep();
    });
  }

  async putCounted(record: TokenRecord, limit: CountLimit): Promise<boolean> {
    return this.guard(() => this.counted(record, limit.group, limit.max));
  }

  /**
   * Writes the record counted in `group`, in one IMMEDIATE transaction with the check, so every
   * process on the file sees one count. `live` in the groups table counts the rows whose
   * `count_group` names the group; expired rows stop counting when the group looks full.
   */
  private counted(record: TokenRecord, group: string, max: number | null): boolean {
    const now = Date.now();
    this.db.exec('BEGIN IMMEDIATE');
    try {
      let live = this.groupLive(group);
      const groupOf = () =>
        (this.sql.groupOf.get(record.id) as { count_group: string | null } | undefined)?.count_group ?? null;
      let before = groupOf();
      const held = () => live - (before === group ? 1 : 0);
      if (max !== null && held() >= max) {
        const released = this.sql.groupRelease.run(group, now).changes;
        if (released > 0) {
          this.sql.groupAdd.run(-released, group);
          live -= released;
          before = groupOf();
        }
        if (held() >= max) {
          this.db.exec('COMMIT');
          return false;
        }
      }
      if (before !== null && before !== group) this.sql.groupAdd.run(-1, before);
      this.sql.put.run(...toRow(record), group);
      if (before !== group) this.sql.groupAdd.run(1, group);
      this.db.exec('COMMIT');
      return true;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /** The group's count (a group met for the first time starts at 0). */
  private groupLive(group: string): number {
    const row = this.sql.groupLive.get(group) as { live: number } | undefined;
    if (row !== undefined) return row.live;
    this.sql.groupCreate.run(group, 0);
    return 0;
  }

  async get(id: string): Promise<TokenRecord | null> {
    return this.guard(() => {
      const row = this.sql.get.get(id, Date.now()) as Record<string, unknown> | undefined;
      return row === undefined ? null : fromRow(row);
    });
  }

  async listByUser(user: string): Promise<TokenRecord[]> {
    return this.guard(() =>
      (this.sql.list.all(foldName(user), Date.now()) as Array<Record<string, unknown>>).map(fromRow),
    );
  }

  async update(id: string, changes: TokenChanges): Promise<boolean> {
    return this.guard(() => {
      const columns = changedColumns(changes);
      if (columns.length === 0) return this.sql.get.get(id, Date.now()) !== undefined;
      // Built from fixed column names only; every value is a parameter.
      const set = columns.map(([column]) => `${column} = ?`).join(', ');
      const statement = this.db.prepare(
        `UPDATE ${this.tables.tokens} SET ${set} WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)`,
      );
      const now = Date.now();
      // One transaction: the change, and its entry in the log, so other processes drop the old version.
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const changed = statement.run(...columns.map(([, value]) => value), id, now).changes > 0;
        if (changed) this.sql.logRevocation.run(id, now);
        this.db.exec('COMMIT');
        if (changed) this.emit(id);
        return changed;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async delete(id: string): Promise<boolean> {
    const existed = this.guard(() => {
      const now = Date.now();
      // One transaction: the token goes and its revocation is logged for the other processes.
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const row = this.sql.remove.get(id) as
          | { expires_at: number | null; count_group: string | null }
          | undefined;
        if (row?.count_group != null) this.sql.groupAdd.run(-1, row.count_group);
        this.sql.logRevocation.run(id, now);
        this.db.exec('COMMIT');
        this.housekeep();
        return row !== undefined && (row.expires_at === null || row.expires_at > now);
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
    for (const listener of this.listeners) listener(id);
    return existed;
  }

  async touch(id: string, at: number, ip: string | null): Promise<void> {
    this.guard(() => this.relaxed(() => this.sql.touch.run(at, ip, id, Date.now())));
  }

  async search(query: TokenQuery): Promise<TokenSearchPage> {
    return this.guard(() => {
      const { where, params } = searchWhere(query, Date.now(), DIALECT);
      // One row more than asked tells whether another page follows.
      const rows = this.db
        .prepare(
          `SELECT * FROM ${this.tables.tokens} WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
        )
        .all(...params, query.limit + 1, query.start) as Array<Record<string, unknown>>;
      const values = rows.slice(0, query.limit).map(fromRow);
      return rows.length > query.limit
        ? { values, isLastPage: false, nextStart: query.start + query.limit }
        : { values, isLastPage: true };
    });
  }

  async countFailure(key: string, windowMs: number): Promise<number> {
    return (await this.increment(key, 1, windowMs)).count;
  }

  async increment(key: string, by: number, windowMs: number): Promise<WindowCount> {
    return this.guard(() => {
      const now = Date.now();
      const row = this.relaxed(() => this.sql.increment.get(key, by, now + windowMs, now, now)) as {
        count: number;
        until: number;
      };
      this.housekeep();
      return { count: row.count, resetAt: row.until };
    });
  }

  async failureCount(key: string): Promise<number> {
    return this.guard(() => {
      const row = this.sql.failureCount.get(key, Date.now()) as { count: number } | undefined;
      return row?.count ?? 0;
    });
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    return this.guard(() => {
      const now = Date.now();
      const won = this.relaxed(() => this.sql.claim.get(key, now + ttlMs, now)) !== undefined;
      this.housekeep();
      return won;
    });
  }

  async putValue(key: string, value: string, ttlMs: number): Promise<void> {
    this.guard(() => {
      this.sql.putValue.run(key, value, Date.now() + ttlMs);
      this.housekeep();
    });
  }

  async getValue(key: string): Promise<string | null> {
    return this.guard(() => {
      const row = this.sql.getValue.get(key, Date.now()) as { value: string } | undefined;
      return row?.value ?? null;
    });
  }

  async takeValue(key: string): Promise<string | null> {
    return this.guard(() => {
      // One statement: of processes sharing the file, one deletes the row and reads it.
      const row = this.sql.takeValue.get(key) as { value: string; until: number } | undefined;
      return row !== undefined && row.until > Date.now() ? row.value : null;
    });
  }

  async expiringBetween(after: number, upTo: number, limit: number): Promise<TokenRecord[]> {
    return this.guard(() => {
      const floor = Math.max(after, Date.now() - EXPIRED_RETENTION_MS);
      return (this.sql.expiring.all(floor, upTo, limit) as Array<Record<string, unknown>>).map(fromRow);
    });
  }

  /**
   * Delivers revocations and changes from every process on the file by polling its log (an
   * `unref()`'d timer, one indexed read per tick). While the log cannot be read the feed is
   * reported down; once it can again, listeners get `'*'` (caches start over) and the feed up.
   */
  async subscribe(
    onRevoked: RevocationListener,
    onFeedState?: (connected: boolean) => void,
  ): Promise<() => Promise<void>> {
    this.guard(() => {
      if (this.timer !== undefined) return;
      this.cursor = (this.sql.lastRevocation.get() as { seq: number }).seq;
      this.timer = setInterval(() => this.poll(), this.pollIntervalMs);
      this.timer.unref();
    });
    this.listeners.add(onRevoked);
    if (onFeedState !== undefined) this.feedListeners.add(onFeedState);
    return async () => {
      this.listeners.delete(onRevoked);
      if (onFeedState !== undefined) this.feedListeners.delete(onFeedState);
      if (this.listeners.size === 0) this.stopPolling();
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopPolling();
    this.listeners.clear();
    if (this.ownsDatabase && this.db.open) this.db.close();
  }

  private stopPolling(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private poll(): void {
    let revoked: Array<{ seq: number; id: string }>;
    try {
      revoked = this.sql.revocationsAfter.all(this.cursor) as Array<{ seq: number; id: string }>;
    } catch {
      if (!this.feedFailing) for (const listener of this.feedListeners) listener(false);
      this.feedFailing = true;
      this.emit('*');
      return;
    }
    // Log entries are numbered without gaps; a gap means entries were pruned before we read them.
    const missed = revoked.length > 0 && revoked[0]!.seq > this.cursor + 1;
    if (this.feedFailing || missed) this.emit('*');
    if (this.feedFailing) for (const listener of this.feedListeners) listener(true);
    this.feedFailing = false;
    for (const { seq, id } of revoked) {
      this.cursor = seq;
      const named = revokedIdOf(id); // a log row only ever names one token
      if (named !== undefined) this.emit(named);
    }
  }

  private emit(id: string): void {
    for (const listener of this.listeners) listener(id);
  }

  /** Writes whose loss in a power cut harms no one skip the fsync (`synchronous: 'full'` only). */
  private relaxed<T>(work: () => T): T {
    if (!this.full) return work();
    // Not a prepared statement: SQLite applies this pragma when it is prepared, not when run.
    this.db.pragma('synchronous = NORMAL');
    try {
      return work();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /** At most once a minute, during a write: drop rows nobody may read any more. */
  private housekeep(): void {
    const now = Date.now();
    if (now - this.lastHousekeeping < HOUSEKEEPING_MS) return;
    this.lastHousekeeping = now;
    this.relaxed(() => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        this.sql.releasePurged.run(now - EXPIRED_RETENTION_MS, now - EXPIRED_RETENTION_MS);
        this.sql.purgeTokens.run(now - EXPIRED_RETENTION_MS);
        this.db.exec('COMMIT');
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
      this.sql.purgeFailures.run(now);
      this.sql.purgeClaims.run(now);
      this.sql.purgeValues.run(now);
      this.sql.purgeLog.run(now - REVOCATION_LOG_MS);
    });
  }

  /** Runs a database call; any failure is a StoreError (a 503), never "not found". */
  private guard<T>(work: () => T): T {
    if (this.closed) throw new StoreError('The token store is closed.');
    try {
      return work();
    } catch (err) {
      if (err instanceof TokenGateError) throw err;
      throw new StoreError(undefined, { cause: err });
    }
  }
}
