/**
 * The parts of a `pg` Pool that `PostgresTokenStore` calls, declared here so that the
 * package's types never import `pg`. A `pg` 8 `Pool` fits as it is.
 */
export interface PgPoolLike {
  query(text: string, values?: unknown[]): Promise<PgResultLike>;
  /** With a `name`, pg prepares the statement once per connection and reuses it. */
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<PgResultLike>;
  /** A client of its own: the store listens for revocations on one. */
  connect(): Promise<PgPoolClientLike>;
}

export interface PgResultLike {
  rows: Array<Record<string, unknown>>;
  rowCount: number | null;
}

/** A client checked out of the pool. */
export interface PgPoolClientLike {
  query(text: string, values?: unknown[]): Promise<PgResultLike>;
  /** Returns the client; with an error (or `true`) the pool destroys it instead. */
  release(err?: Error | boolean): void;
  // biome-ignore lint/suspicious/noExplicitAny: pg types its listeners with any[]; narrower types reject its Client
  on(event: string, listener: (...args: any[]) => void): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}
