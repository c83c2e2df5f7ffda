/**
 * The parts of a better-sqlite3 `Database` that `SqliteTokenStore` calls, declared here so the
 * package's types never import better-sqlite3. An open better-sqlite3 12 or 13 database fits.
 */
export interface SqliteDatabaseLike {
  prepare(source: string): SqliteStatementLike;
  exec(source: string): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  close(): unknown;
  readonly open: boolean;
  readonly inTransaction: boolean;
  readonly name: string;
}

/** A prepared statement. */
export interface SqliteStatementLike {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
