/**
 * The parts of a `pg` Pool that `PostgresTokenStore` calls, declared here so that the
 * package's types never import `pg`. A `pg` 8 `Pool` fits as it is.
 * @example
 * import pg from 'pg';
 * const pool: PgPoolLike = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const store = new PostgresTokenStore({ pool });
 */
export interface PgPoolLike {
  /** Runs one statement with parameters. */
  query(text: string, values?: unknown[]): Promise<PgResultLike>;
  /** With a `name`, pg prepares the statement once per connection and reuses it. */
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<PgResultLike>;
  /** A client of its own: the store listens for revocations on one. */
  connect(): Promise<PgPoolClientLike>;
}

/**
 * What a query answers, as `pg` gives it.
 * @example
 * const result: PgResultLike = await pool.query('SELECT 1 AS one');
 * console.log(result.rows[0]?.['one'], result.rowCount);
 */
export interface PgResultLike {
  /** The rows, one object per row. */
  rows: Array<Record<string, unknown>>;
  /** Rows returned or changed, or null for statements without a count. */
  rowCount: number | null;
}

/**
 * A client checked out of the pool (the store listens for revocations on one).
 * @example
 * const client: PgPoolClientLike = await pool.connect();
 * try {
 *   await client.query('LISTEN my_channel');
 * } finally {
 *   client.release();
 * }
 */
export interface PgPoolClientLike {
  /** Runs one statement with parameters. */
  query(text: string, values?: unknown[]): Promise<PgResultLike>;
  /** Returns the client; with an error (or `true`) the pool destroys it instead. */
  release(err?: Error | boolean): void;
  /** Listens for `notification`, `error` and `end`. */
  // biome-ignore lint/suspicious/noExplicitAny: pg types its listeners with any[]; narrower types reject its Client
  on(event: string, listener: (...args: any[]) => void): unknown;
  /** Stops listening. */
  // biome-ignore lint/suspicious/noExplicitAny: as above
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}
