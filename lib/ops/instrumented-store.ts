import { BoundedCache } from '../internal/bounded-cache.js';
import { MemoryTokenStore } from '../stores/memory-token-store.js';
import { PostgresTokenStore } from '../stores/postgres-token-store.js';
import { RedisTokenStore } from '../stores/redis-token-store.js';
import { SqliteTokenStore } from '../stores/sqlite-token-store.js';
import type { RevocationListener, TokenStore } from '../stores/token-store.js';

/** How a store call ended: `ok`, an `error`, or a `timeout` (it settled after the gate's deadline, or never before it). */
export type StoreCallResult = 'ok' | 'error' | 'timeout';

/** What the instrumented store reports (the metrics implement it). */
export interface StoreObserver {
  call(operation: string, seconds: number, result: StoreCallResult): void;
  /** A revocation or change message arrived over the feed: one token, or `'*'` (anything may have changed). */
  feedMessage(scope: 'token' | 'all'): void;
  /** A change made through this instance came back over the feed after `seconds`. */
  feedLag(seconds: number): void;
  /** The store reported its feed down or up. */
  feedState(connected: boolean): void;
}

/** The bounded label value for a store: its kind, never its address. */
export function storeKind(store: TokenStore): string {
  if (store instanceof MemoryTokenStore) return 'memory';
  if (store instanceof RedisTokenStore) return 'redis';
  if (store instanceof SqliteTokenStore) return 'sqlite';
  if (store instanceof PostgresTokenStore) return 'postgres';
  return 'custom';
}

const TIMED = [
  'put',
  'putCounted',
  'get',
  'listByUser',
  'update',
  'delete',
  'touch',
  'search',
  'countFailure',
  'failureCount',
  'claim',
  'putValue',
  'getValue',
  'takeValue',
  'expiringBetween',
] as const;

/** Changes that the store announces over its feed: their start is remembered to time the round trip. */
const ANNOUNCED = new Set<string>(['update', 'delete']);

/**
 * Wraps a store so that every call is timed and every failure counted, in one place, without
 * changing what the calls return. Optional methods stay absent when the store lacks them
 * (the gate tests for them). Revocations made through this wrapper are timed until they come
 * back over the store's own feed: that round trip (publish → broker → subscriber) is the
 * path every other instance's revocations take, measured on one clock.
 */
export function instrumentedStore(
  store: TokenStore,
  observer: StoreObserver,
  deadlineMs: number,
): TokenStore {
  const announced = new BoundedCache<string, number>(10_000, 60_000);
  const wrapped: Record<string, unknown> = {};
  for (const operation of TIMED) {
    const method = store[operation] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (typeof method !== 'function') continue;
    wrapped[operation] = (...args: unknown[]) => {
      const started = performance.now();
      if (ANNOUNCED.has(operation) && typeof args[0] === 'string') announced.set(args[0], started);
      const settle = (failed: boolean) => {
        const seconds = (performance.now() - started) / 1000;
        observer.call(operation, seconds, seconds * 1000 > deadlineMs ? 'timeout' : failed ? 'error' : 'ok');
      };
      let result: Promise<unknown>;
      try {
        result = method.apply(store, args);
      } catch (err) {
        settle(true);
        throw err;
      }
      result.then(
        () => settle(false),
        () => settle(true),
      );
      return result;
    };
  }
  if (store.subscribe !== undefined) {
    const subscribe = store.subscribe.bind(store);
    wrapped['subscribe'] = (onRevoked: RevocationListener, onFeedState?: (connected: boolean) => void) =>
      subscribe(
        (id) => {
          if (id === '*') observer.feedMessage('all');
          else {
            observer.feedMessage('token');
            const sent = announced.get(id);
            if (sent !== undefined) {
              announced.delete(id);
              observer.feedLag((performance.now() - sent) / 1000);
            }
          }
          onRevoked(id);
        },
        (connected) => {
          observer.feedState(connected);
          onFeedState?.(connected);
        },
      );
  }
  if (store.close !== undefined) wrapped['close'] = () => store.close!();
  return wrapped as unknown as TokenStore;
}
