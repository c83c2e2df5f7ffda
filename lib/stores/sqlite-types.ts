/**
 * The parts of a better-sqlite3 `Database` that `SqliteTokenStore` calls, declared here so the
 * package's types never import better-sqlite3. An open better-sqlite3 12 or 13 database fits.
 * @example
 * import Database from 'better-sqlite3';
 * const database: SqliteDatabaseLike = new Database('/var/lib/proxy/app.db');
 * const store = new SqliteTokenStore({ database, tablePrefix: 'tokens_' });
 */
export interface SqliteDatabaseLike {
  /** Compiles a statement. */
  prepare(source: string): SqliteStatementLike;
  /** Runs SQL without results (schema changes). */
  exec(source: string): unknown;
  /** Reads or sets a PRAGMA. */
  pragma(source: string, options?: { simple?: boolean }): unknown;
  /** Closes the database (only one the store opened itself). */
  close(): unknown;
  /** True until closed. */
  readonly open: boolean;
  /** True inside a transaction. */
  readonly inTransaction: boolean;
  /** The file's path. */
  readonly name: string;
}

/**
 * A prepared statement of a `SqliteDatabaseLike`.
 * @example
 * import Database from 'better-sqlite3';
 * const statement: SqliteStatementLike = new Database('tokens.db').prepare(
 *   'SELECT count(*) AS n FROM bbt_tokens',
 * );
 * console.log(statement.get());
 */
export interface SqliteStatementLike {
  /** Runs it; how many rows changed. */
  run(...params: unknown[]): {
    /** Rows inserted, updated or deleted. */
    changes: number;
  };
  /** The first row, or undefined. */
  get(...params: unknown[]): unknown;
  /** Every row. */
  all(...params: unknown[]): unknown[];
}
