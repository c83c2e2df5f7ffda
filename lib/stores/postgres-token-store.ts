import { createHash } from 'node:crypto';
import { StoreError, TokenGateError } from '../errors.js';
import { boolean, fail, object, type Shape, string, withMethods } from '../internal/options.js';
import type { TokenChanges, TokenRecord } from '../model.js';
import { foldName } from '../validate.js';
import { PgRevocationListener } from './postgres-listener.js';
import {
  POSTGRES_SCHEMA_VERSION,
  type PostgresNames,
  type PostgresSchemaOptions,
  postgresMigrations,
  postgresNames,
  postgresSchemaSql,
} from './postgres-schema.js';
import type { PgPoolClientLike, PgPoolLike } from './postgres-types.js';
import {
  changedColumns,
  fromRow,
  type SqlDialect,
  type SqlValue,
  searchWhere,
  TOKEN_COLUMNS,
  toRow,
} from './sql-record.js';
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

export type { PostgresSchemaOptions } from './postgres-schema.js';
export type { PgPoolClientLike, PgPoolLike, PgResultLike } from './postgres-types.js';

/**
 * Options of `PostgresTokenStore`, with the schema and table prefix.
 * @example
 * const options: PostgresTokenStoreOptions = {
 *   pool,
 *   schema: 'api_tokens',
 *   createSchema: false,
 *   preparedStatements: false,
 * };
 * const store = new PostgresTokenStore(options);
 */
export interface PostgresTokenStoreOptions extends PostgresSchemaOptions {
  /** A `pg` Pool you created and own; `close()` leaves it open. One of its connections listens for revocations. */
  pool: PgPoolLike;
  /**
   * Create (or upgrade) the tables on first use. Default true. With false, the tables must
   * exist at this release's schema version (see `PostgresTokenStore.schemaSql`).
   */
  createSchema?: boolean;
  /**
   * Use named prepared statements (parsed and planned once per connection: a verify costs
   * about half as much). Default true. Set false behind a pooler that cannot keep them
   * (PgBouncer in transaction mode before 1.21).
   */
  preparedStatements?: boolean;
}

const OPTIONS: Shape<PostgresTokenStoreOptions> = {
  pool: withMethods(['query', 'connect'], 'a pg Pool'),
  schema: string(),
  tablePrefix: string(),
  createSchema: boolean,
  preparedStatements: boolean,
};

const HOUSEKEEPING_MS = 60_000;

const DIALECT: SqlDialect = {
  placeholder: (index) => `$${index}`,
  contains: (column, placeholder) => `strpos(${column}, ${placeholder}) > 0`,
};

const placeholders = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => `$${from + i}`).join(', ');

/**
 * Tokens in PostgreSQL, shared by a fleet of proxies. Revocations reach every instance
 * through `LISTEN/NOTIFY` within milliseconds; the listening connection reconnects by itself,
 * and until it is back the verified-token cache is cleared at every try. Takes your `pg` Pool
 * (an optional peer dependency); every value is a query parameter, and the schema and table
 * prefix are checked and quoted. Failures reject with `StoreError`.
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 1000 });
 * pool.on('error', () => {}); // a restarting server must not crash the process
 * const store = new PostgresTokenStore({ pool, schema: 'tokens' });
 */
export class PostgresTokenStore implements TokenStore {
  readonly kind = 'postgres';
  /**
   * The SQL that creates the store's tables and indexes, for DBAs who run it themselves.
   * @example
   * import { writeFileSync } from 'node:fs';
   * writeFileSync('tokens.sql', PostgresTokenStore.schemaSql({ schema: 'tokens' }));
   */
  static schemaSql(options: Readonly<PostgresSchemaOptions> = {}): string {
    return postgresSchemaSql(options);
  }

  private readonly pool: PgPoolLike;
  private readonly names: PostgresNames;
  private readonly createSchema: boolean;
  private readonly prepared: boolean;
  private readonly sql: Record<
    | 'put'
    | 'lockGroup'
    | 'get'
    | 'list'
    | 'exists'
    | 'touch'
    | 'delete'
    | 'increment'
    | 'failureCount'
    | 'claim'
    | 'putValue'
    | 'getValue'
    | 'takeValue'
    | 'expiring'
    | 'purge',
    string
  >;
  private readonly listeners = new Set<PgRevocationListener>();
  private schemaReady: Promise<void> | undefined;
  private lastHousekeeping = 0;

  constructor(options: Readonly<PostgresTokenStoreOptions>) {
    object(OPTIONS)(options, '');
    if (options.pool === undefined) fail('pool', 'is required: a pg Pool');
    this.pool = options.pool;
    this.names = postgresNames(options);
    this.createSchema = options.createSchema ?? true;
    this.prepared = options.preparedStatements ?? true;
    const t = this.names;
    const live = (p: number) => `(expires_at IS NULL OR expires_at > $${p})`;
    const updates = TOKEN_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = EXCLUDED.${c}`);
    this.sql = {
      // One statement: the row, and its count moved from the group it was in (if any) to its own.
      put: `WITH prior AS (SELECT count_group FROM ${t.tokens} WHERE id = $1),
        written AS (INSERT INTO ${t.tokens} (${TOKEN_COLUMNS.join(', ')}, count_group) VALUES (${placeholders(1, TOKEN_COLUMNS.length + 1)})
          ON CONFLICT (id) DO UPDATE SET ${updates.join(', ')}, count_group = EXCLUDED.count_group),
        left_group AS (UPDATE ${t.groups} SET live = live - 1
          WHERE group_key = (SELECT count_group FROM prior) AND group_key <> $${TOKEN_COLUMNS.length + 1})
        INSERT INTO ${t.groups} AS g (group_key, live) VALUES ($${TOKEN_COLUMNS.length + 1}, 1)
          ON CONFLICT (group_key) DO UPDATE SET live = g.live + 1
          WHERE NOT EXISTS (SELECT 1 FROM prior WHERE count_group = $${TOKEN_COLUMNS.length + 1})`,
      // Locks the group's row (made at 0 when new) and reads its count and the id's current group.
      lockGroup: `INSERT INTO ${t.groups} AS g (group_key, live) VALUES ($1, 0)
        ON CONFLICT (group_key) DO UPDATE SET live = g.live
        RETURNING live, (SELECT count_group FROM ${t.tokens} WHERE id = $2) AS before`,
      get: `SELECT * FROM ${t.tokens} WHERE id = $1 AND ${live(2)}`,
      list: `SELECT * FROM ${t.tokens} WHERE user_key = $1 AND ${live(2)} ORDER BY created_at DESC, id DESC`,
      exists: `SELECT 1 FROM ${t.tokens} WHERE id = $1 AND ${live(2)}`,
      touch: `UPDATE ${t.tokens} SET last_used_at = $1, last_used_ip = $2 WHERE id = $3 AND ${live(4)}`,
      // One statement: the row goes and the NOTIFY is sent when it commits, or neither happens.
      delete: `WITH gone AS (DELETE FROM ${t.tokens} WHERE id = $1 RETURNING expires_at, count_group),
        uncounted AS (UPDATE ${t.groups} SET live = live - 1 WHERE group_key = (SELECT count_group FROM gone))
        SELECT pg_notify($2, $1::text), (SELECT count(*) FROM gone WHERE expires_at IS NULL OR expires_at > $3) AS live`,
      increment: `INSERT INTO ${t.failures} AS f (key, count, until) VALUES ($1, $4, $2)
        ON CONFLICT (key) DO UPDATE SET
          count = CASE WHEN f.until > $3 THEN f.count + EXCLUDED.count ELSE EXCLUDED.count END,
          until = CASE WHEN f.until > $3 THEN f.until ELSE EXCLUDED.until END
        RETURNING count, until`,
      failureCount: `SELECT count FROM ${t.failures} WHERE key = $1 AND until > $2`,
      claim: `INSERT INTO ${t.claims} AS c (key, until) VALUES ($1, $2)
        ON CONFLICT (key) DO UPDATE SET until = EXCLUDED.until WHERE c.until <= $3
        RETURNING 1 AS won`,
      putValue: `INSERT INTO ${t.values} (key, value, until) VALUES ($1, $2, $3)
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, until = EXCLUDED.until`,
      getValue: `SELECT value FROM ${t.values} WHERE key = $1 AND until > $2`,
      takeValue: `DELETE FROM ${t.values} WHERE key = $1 RETURNING value, until`,
      expiring: `SELECT * FROM ${t.tokens} WHERE expires_at > $1 AND expires_at <= $2 ORDER BY expires_at, id LIMIT $3`,
      // Purged rows stop counting in their groups in the same statement.
      purge: `WITH a AS (DELETE FROM ${t.tokens} WHERE expires_at <= $1 RETURNING count_group),
        released AS (UPDATE ${t.groups} AS g SET live = g.live - c.n
          FROM (SELECT count_group, count(*) AS n FROM a WHERE count_group IS NOT NULL GROUP BY count_group) AS c
          WHERE g.group_key = c.count_group),
        b AS (DELETE FROM ${t.failures} WHERE until <= $2),
        v AS (DELETE FROM ${t.values} WHERE until <= $2)
        DELETE FROM ${t.claims} WHERE until <= $2`,
    };
  }

  /**
   * Creates the schema and tables, or upgrades older ones, under an advisory lock so that a
   * fleet starting together does it once. Runs by itself before the first query; call it at
   * startup to find a wrong URL or missing rights at once. Refuses tables of a newer release.
   */
  ensureSchema(): Promise<void> {
    this.schemaReady ??= this.prepareSchema().catch((err: unknown) => {
      this.schemaReady = undefined; // try again on the next call
      throw err instanceof TokenGateError ? err : new StoreError(undefined, { cause: err });
    });
    return this.schemaReady;
  }

  async put(record: TokenRecord): Promise<void> {
    await this.counted(record, userGroup(record.user), null);
    this.housekeep();
  }

  async putCounted(record: TokenRecord, limit: CountLimit): Promise<boolean> {
    return this.counted(record, limit.group, limit.max);
  }

  /**
   * Writes the record counted in `group`. Without a limit in one statement; with one in a
   * transaction that holds the group's row lock from the check to the write, so a fleet sees one
   * count. `live` counts the rows whose `count_group` names the group; expired rows stop counting
   * when the group looks full.
   */
  private async counted(record: TokenRecord, group: string, max: number | null): Promise<boolean> {
    const values = [...toRow(record), group];
    if (max === null) {
      await this.query(this.sql.put, values);
      return true;
    }
    const t = this.names;
    const now = Date.now();
    return this.transaction(async (q) => {
      const locked = await q(this.sql.lockGroup, [group, record.id]);
      let live = Number(locked.rows[0]!['live']);
      let before = (locked.rows[0]!['before'] ?? null) as string | null;
      const held = () => live - (before === group ? 1 : 0);
      if (held() >= max) {
        const released = await q(
          // Rows a concurrent delete holds are skipped (it uncounts them itself): no lock cycle.
          `WITH r AS (UPDATE ${t.tokens} SET count_group = NULL WHERE id IN (SELECT id FROM ${t.tokens}
             WHERE count_group = $1 AND expires_at <= $2 FOR UPDATE SKIP LOCKED) RETURNING id)
           UPDATE ${t.groups} SET live = live - (SELECT count(*) FROM r) WHERE group_key = $1
           RETURNING live, (SELECT count_group FROM ${t.tokens} WHERE id = $3 AND id NOT IN (SELECT id FROM r)) AS before`,
          [group, now, record.id],
        );
        live = Number(released.rows[0]!['live']);
        before = (released.rows[0]!['before'] ?? null) as string | null;
        if (held() >= max) return false;
      }
      await q(this.sql.put, values);
      return true;
    });
  }

  /** Runs `work` in one transaction on a client of the pool; any failure is a StoreError. */
  private async transaction<T>(
    work: (q: (text: string, values: SqlValue[]) => ReturnType<PgPoolClientLike['query']>) => Promise<T>,
  ): Promise<T> {
    await this.ensureSchema();
    let client: PgPoolClientLike;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new StoreError(undefined, { cause: err });
    }
    let failed: unknown;
    try {
      await client.query('BEGIN');
      const result = await work((text, values) => client.query(text, values));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      failed = err;
      await client.query('ROLLBACK').catch(() => {});
      if (err instanceof TokenGateError) throw err;
      throw new StoreError(undefined, { cause: err });
    } finally {
      client.release(failed instanceof Error && !(failed instanceof TokenGateError) ? failed : undefined);
    }
  }

  async get(id: string): Promise<TokenRecord | null> {
    const { rows } = await this.query(this.sql.get, [id, Date.now()]);
    return rows.length === 0 ? null : fromRow(rows[0]!);
  }

  async listByUser(user: string): Promise<TokenRecord[]> {
    const { rows } = await this.query(this.sql.list, [foldName(user), Date.now()]);
    return rows.map(fromRow);
  }

  async update(id: string, changes: TokenChanges): Promise<boolean> {
    const columns = changedColumns(changes);
    if (columns.length === 0) return (await this.query(this.sql.exists, [id, Date.now()])).rows.length > 0;
    // Built from fixed column names only; every value is a parameter. The change is announced
    // on the revocation channel in the same statement, so other instances drop the old version.
    const set = columns.map(([column], i) => `${column} = $${i + 1}`).join(', ');
    const n = columns.length;
    const { rows } = await this.query(
      `WITH changed AS (UPDATE ${this.names.tokens} SET ${set} WHERE id = $${n + 1} AND (expires_at IS NULL OR expires_at > $${n + 2}) RETURNING id)
        SELECT pg_notify($${n + 3}, id) FROM changed`,
      [...columns.map(([, value]) => value), id, Date.now(), this.names.channel],
    );
    return rows.length > 0;
  }

  async delete(id: string): Promise<boolean> {
    const { rows } = await this.query(this.sql.delete, [id, this.names.channel, Date.now()]);
    this.housekeep();
    return Number(rows[0]?.['live'] ?? 0) > 0;
  }

  async touch(id: string, at: number, ip: string | null): Promise<void> {
    await this.query(this.sql.touch, [at, ip, id, Date.now()]);
  }

  async search(query: TokenQuery): Promise<TokenSearchPage> {
    const { where, params } = searchWhere(query, Date.now(), DIALECT);
    const p = params.length;
    // One row more than asked tells whether another page follows.
    const { rows } = await this.query(
      `SELECT * FROM ${this.names.tokens} WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT $${p + 1} OFFSET $${p + 2}`,
      [...params, query.limit + 1, query.start],
    );
    const values = rows.slice(0, query.limit).map(fromRow);
    return rows.length > query.limit
      ? { values, isLastPage: false, nextStart: query.start + query.limit }
      : { values, isLastPage: true };
  }

  async countFailure(key: string, windowMs: number): Promise<number> {
    return (await this.increment(key, 1, windowMs)).count;
  }

  async increment(key: string, by: number, windowMs: number): Promise<WindowCount> {
    const now = Date.now();
    const { rows } = await this.query(this.sql.increment, [key, now + windowMs, now, by]);
    this.housekeep();
    return { count: Number(rows[0]!['count']), resetAt: Number(rows[0]!['until']) };
  }

  async failureCount(key: string): Promise<number> {
    const { rows } = await this.query(this.sql.failureCount, [key, Date.now()]);
    return rows.length === 0 ? 0 : Number(rows[0]!['count']);
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const { rows } = await this.query(this.sql.claim, [key, now + ttlMs, now]);
    this.housekeep();
    return rows.length > 0;
  }

  async putValue(key: string, value: string, ttlMs: number): Promise<void> {
    await this.query(this.sql.putValue, [key, value, Date.now() + ttlMs]);
    this.housekeep();
  }

  async getValue(key: string): Promise<string | null> {
    const { rows } = await this.query(this.sql.getValue, [key, Date.now()]);
    return rows.length === 0 ? null : String(rows[0]!['value']);
  }

  async takeValue(key: string): Promise<string | null> {
    // DELETE … RETURNING: of concurrent callers, the one whose delete removes the row reads it.
    const { rows } = await this.query(this.sql.takeValue, [key]);
    const row = rows[0];
    return row === undefined || Number(row['until']) <= Date.now() ? null : String(row['value']);
  }

  async expiringBetween(after: number, upTo: number, limit: number): Promise<TokenRecord[]> {
    const floor = Math.max(after, Date.now() - EXPIRED_RETENTION_MS);
    const { rows } = await this.query(this.sql.expiring, [floor, upTo, limit]);
    return rows.map(fromRow);
  }

  /**
   * LISTENs on a connection of its own from the pool (for as long as you stay subscribed).
   * Resolves once listening; a dropped connection reports the feed down and `'*'`, and
   * reconnects by itself.
   */
  async subscribe(
    onRevoked: RevocationListener,
    onFeedState?: (connected: boolean) => void,
  ): Promise<() => Promise<void>> {
    await this.ensureSchema();
    const listener = new PgRevocationListener(this.pool, this.names.channel, onRevoked, onFeedState);
    try {
      await listener.start();
    } catch (err) {
      await listener.stop();
      throw new StoreError(undefined, { cause: err });
    }
    this.listeners.add(listener);
    return async () => {
      this.listeners.delete(listener);
      await listener.stop();
    };
  }

  /** Stops listening. Your pool stays open: end it yourself. */
  async close(): Promise<void> {
    const listeners = [...this.listeners];
    this.listeners.clear();
    await Promise.all(listeners.map((listener) => listener.stop()));
  }

  private async query(text: string, values: SqlValue[]) {
    await this.ensureSchema();
    try {
      if (!this.prepared) return await this.pool.query(text, values);
      // Named by the text itself, so stores on other schemas can share the pool's connections.
      const name = `eat_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      return await this.pool.query({ name, text, values });
    } catch (err) {
      throw new StoreError(undefined, { cause: err });
    }
  }

  /** At most once a minute, after a write and without waiting for it: drop rows nobody may read any more. */
  private housekeep(): void {
    const now = Date.now();
    if (now - this.lastHousekeeping < HOUSEKEEPING_MS) return;
    this.lastHousekeeping = now;
    this.pool.query(this.sql.purge, [now - EXPIRED_RETENTION_MS, now]).catch(() => {
      this.lastHousekeeping = 0; // try again with the next write
    });
  }

  private async prepareSchema(): Promise<void> {
    const n = this.names;
    const client: PgPoolClientLike = await this.pool.connect();
    let failed: unknown;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [n.lockKey]);
      // Existence first: a DBA-made schema needs no CREATE right on the database.
      const existing = await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [n.version]);
      let current = 0;
      if (existing.rows[0]?.['found'] === true) {
        const { rows } = await client.query(`SELECT max(version) AS version FROM ${n.version}`);
        current = Number(rows[0]?.['version'] ?? 0);
      }
      if (current > POSTGRES_SCHEMA_VERSION) {
        throw new StoreError(
          `The token tables ${n.versionName} are at schema version ${current}, written by a newer express-api-tokens; ` +
            `this release reads schema version ${POSTGRES_SCHEMA_VERSION} at most. Upgrade express-api-tokens.`,
        );
      }
      if (current < POSTGRES_SCHEMA_VERSION) {
        if (!this.createSchema) {
          throw new StoreError(
            `The token tables ${n.versionName} are at schema version ${current}; this release needs ${POSTGRES_SCHEMA_VERSION}. ` +
              'Create them with PostgresTokenStore.schemaSql(), or leave `createSchema` on.',
          );
        }
        const schemaExists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [n.schema]);
        if (schemaExists.rows.length === 0) await client.query(`CREATE SCHEMA ${n.quotedSchema}`);
        if (existing.rows[0]?.['found'] !== true)
          await client.query(`CREATE TABLE ${n.version} (version integer NOT NULL)`);
        const steps = postgresMigrations(n);
        for (let version = current; version < POSTGRES_SCHEMA_VERSION; version++)
          await client.query(steps[version]!);
        await client.query(`DELETE FROM ${n.version}`);
        await client.query(`INSERT INTO ${n.version} (version) VALUES ($1)`, [POSTGRES_SCHEMA_VERSION]);
      }
      await client.query('COMMIT');
    } catch (err) {
      failed = err;
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release(failed instanceof Error && !(failed instanceof TokenGateError) ? failed : undefined);
    }
  }
}
