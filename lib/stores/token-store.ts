import type { Scope, TokenChanges, TokenRecord } from '../model.js';

export type { TokenChanges, TokenRecord } from '../model.js';

/**
 * Filters of the token manager; every field is optional and they combine with AND. Times are
 * epoch milliseconds.
 * @example
 * const query: TokenQuery = {
 *   scope: 'write',
 *   lastUsedBefore: Date.now() - 90 * 86_400_000,
 *   start: 0,
 *   limit: 100,
 * };
 * const page = await gate.tokens.search(query);
 */
export interface TokenQuery {
  /** Owner, matched case-insensitively. */
  user?: string;
  /** Case-insensitive substring of the token name. */
  name?: string;
  /** Tokens of this scope. */
  scope?: Scope;
  /** Tokens that expire before this time (tokens without expiry never match). */
  expiresBefore?: number;
  /** Tokens last used before this time, or never used. */
  lastUsedBefore?: number;
  /** Tokens created after this time. */
  createdAfter?: number;
  /** `true`: tokens with any restriction (`allowedIps`, `requiredHeaders`, `resources`); `false`: none. */
  restricted?: boolean;
  /** Position in the store's newest-first index where this page starts (0 = newest). */
  start: number;
  /** Most values to return. */
  limit: number;
}

/**
 * One page of the token manager, newest first (what `TokenStore.search` answers).
 * @example
 * let start: number | undefined = 0;
 * while (start !== undefined) {
 *   const page: TokenSearchPage = await store.search({ start, limit: 500 });
 *   for (const record of page.values) console.log(record.id, record.user);
 *   start = page.isLastPage ? undefined : page.nextStart;
 * }
 */
export interface TokenSearchPage {
  /** The matching records of this page (may be fewer than `limit` even when more follow). */
  values: TokenRecord[];
  /** True when no index entries remain after this page. */
  isLastPage: boolean;
  /** Where the next page starts when `isLastPage` is false. */
  nextStart?: number;
}

/**
 * Called with a revoked (or changed) token id; `'*'` means "drop everything cached" (e.g. after a reconnect).
 * @example
 * const onRevoked: RevocationListener = (id) =>
 *   console.log(id === '*' ? 'drop every cached token' : `revoked ${id}`);
 * const stop = await store.subscribe?.(onRevoked);
 */
export type RevocationListener = (id: string) => void;

/**
 * A counting group and its most live tokens, for `TokenStore.putCounted`. Every token counts in
 * one group: its owner's (`userGroup(user)`, what `put` uses) unless it was put into another one
 * (e.g. `federation:<rule>`, tokens bounded per trust rule instead of per user).
 * @example
 * const limit: CountLimit = { group: 'federation:github-deploys', max: 50 };
 * const stored = await store.putCounted?.(record, limit); // false: 50 live tokens already
 */
export interface CountLimit {
  /** The group: `user:<lower-cased owner>` for the per-user cap, another name for other bounds. 1 to 300 characters. */
  group: string;
  /** Most live tokens the group may hold, this one included. */
  max: number;
}

/**
 * The counting group of a user's tokens (what `put` counts a record in).
 * @example const limit: CountLimit = { group: userGroup('alice'), max: 100 };
 */
export function userGroup(user: string): string {
  return `user:${user.toLowerCase()}`;
}

/**
 * How long a store keeps an expired record, invisible to `get`, `listByUser` and `search`, so
 * that `expiringBetween` can still report its expiry (for `token.expired` events). 24 hours.
 * @example
 * // In your own store: purge expired records only after the retention period.
 * const purgeBefore = Date.now() - EXPIRED_RETENTION_MS;
 */
export const EXPIRED_RETENTION_MS = 86_400_000;

/**
 * Where tokens live. Implement it to bring your own database, and prove it with the contract
 * suite from `express-api-tokens/testing`.
 *
 * Every method rejects with a `StoreError` (code `STORE_UNAVAILABLE`) when the backend fails,
 * never resolves "not found" for a failure: the gate turns that into a 503 (fail closed).
 * User names are matched case-insensitively. Ids passed in have already been validated.
 * A record is *live* until its `expiresAt`; an expired record is never returned by `get`,
 * `listByUser` or `search`.
 * @example
 * // A store that logs revocations; everything else is SQLite's.
 * class LoggingStore extends SqliteTokenStore implements TokenStore {
 *   override async delete(id: string): Promise<boolean> {
 *     console.log(`revoking ${id}`);
 *     return super.delete(id);
 *   }
 * }
 * const gate = createTokenGate({ store: new LoggingStore({ path: './data/tokens.db' }) });
 */
export interface TokenStore {
  /**
   * Required. Stores a new token, counted in its owner's group (`userGroup(record.user)`)
   * without a limit. The id is fresh; an existing id may be overwritten (it leaves its old group).
   */
  put(record: TokenRecord): Promise<void>;
  /**
   * Optional (the per-user cap is only a best effort without it). Stores a new token counted in
   * `limit.group`, atomically with the count: true when stored, false (nothing written) when the
   * group already holds `limit.max` live tokens, on any instance sharing the store. A token stops
   * counting when it is deleted or expires. Must not list the group's tokens on each call.
   */
  putCounted?(record: TokenRecord, limit: CountLimit): Promise<boolean>;
  /** Required. The live record, or null when unknown, revoked or expired. */
  get(id: string): Promise<TokenRecord | null>;
  /** Required. All live tokens of one user (case-insensitive), newest first. */
  listByUser(user: string): Promise<TokenRecord[]>;
  /**
   * Required. Changes fields of a live token (a changed `expiresAt` moves its expiry in every
   * index); false, and no write, when the token is gone. Never resurrects a token.
   */
  update(id: string, changes: TokenChanges): Promise<boolean>;
  /** Required. Revokes: true when the token existed. Idempotent. Notifies subscribers. */
  delete(id: string): Promise<boolean>;
  /** Required. Records a use. A no-op for a token that is gone: it never recreates one. */
  touch(id: string, at: number, ip: string | null): Promise<void>;
  /** Required. One page of the token manager over every user's tokens. */
  search(query: TokenQuery): Promise<TokenSearchPage>;
  /**
   * Optional. Counts one failure under `key` in a window of `windowMs` and returns the count so
   * far in that window. Shared by every instance on the same store; the gate keeps an in-process
   * counter when a store does not implement it.
   */
  countFailure?(key: string, windowMs: number): Promise<number>;
  /** Optional. Reads the failure count of `key` without adding one. */
  failureCount?(key: string): Promise<number>;
  /**
   * Optional. Claims `key` once for `ttlMs`: true for the first caller on any instance sharing
   * the store, false for everyone else until the claim lapses. Expiry reminders use it so a
   * fleet sends each reminder once; without it they are claimed in process only.
   */
  claim?(key: string, ttlMs: number): Promise<boolean>;
  /**
   * Optional. Keeps `value` under `key` for `ttlMs`, replacing what was there. With `getValue`
   * and `takeValue`, the short-lived state every instance must see: the OAuth server's
   * authorization codes, device codes and refresh token families (`gate.oauth()` needs all three).
   */
  putValue?(key: string, value: string, ttlMs: number): Promise<void>;
  /** Optional. The value under `key`, or null when there is none or it lapsed. */
  getValue?(key: string): Promise<string | null>;
  /**
   * Optional. Reads and removes the value under `key` in one atomic step: of concurrent callers
   * on any instance, exactly one gets it (single-use codes, refresh token rotation).
   */
  takeValue?(key: string): Promise<string | null>;
  /**
   * Optional. Records with `after < expiresAt <= upTo`, soonest first, at most `limit`,
   * including records that expired less than `EXPIRED_RETENTION_MS` ago. Expiry reminders and
   * `token.expired` events need it; without it they are off.
   */
  expiringBetween?(after: number, upTo: number, limit: number): Promise<TokenRecord[]>;
  /**
   * Optional. Delivers revocations and changes (`delete`, and `update` so caches drop the old
   * version) made by any instance sharing this store, so verified-token caches can drop them.
   * Resolves once listening; the result stops listening. When the feed drops, the store calls
   * `onFeedState(false)` (the gate then stops trusting its cache) and, once it is back,
   * `onFeedState(true)` and `onRevoked('*')` (anything may have been missed).
   */
  subscribe?(
    onRevoked: RevocationListener,
    onFeedState?: (connected: boolean) => void,
  ): Promise<() => Promise<void>>;
  /** Optional. Releases timers and connections the store itself created. */
  close?(): Promise<void>;
}
