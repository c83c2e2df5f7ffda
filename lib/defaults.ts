/** Defaults that more than one module needs, written once. */

/** Prefix of token strings: tokens look like `bbt_…`. */
export const DEFAULT_TOKEN_PREFIX = 'bbt';

/** Deadline of every store call; past it a request fails closed (503). */
export const DEFAULT_STORE_TIMEOUT_MS = 2_000;

/** Prefix of the SQL stores' table and index names. */
export const DEFAULT_TABLE_PREFIX = 'bbt_';
