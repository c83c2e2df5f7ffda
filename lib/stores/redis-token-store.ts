import { DEFAULT_TOKEN_PREFIX } from '../defaults.js';
import { StoreError, TokenGateError } from '../errors.js';
import { fail, integer, object, type Shape, withMethods } from '../internal/options.js';
import { withTimeout } from '../internal/with-timeout.js';
import { foldName, sameUser } from '../validate.js';
import {
  decodeRecord,
  encodeChanges as encodeChangedFields,
  encodeRecord,
  RECORD_FIELDS,
  type StoredValue,
} from './record-codec.js';
import type { RedisClientLike } from './redis-client.js';
import {
  CLAIM,
  DELETE_TOKEN,
  EXPIRY_INDEX_SET,
  EXPIRY_RANGE,
  GLOBAL_ADD,
  GROUP_MOVE,
  GROUP_RESERVE,
  GROUP_SEED,
  INDEX_ADD,
  INDEX_EXTEND,
  INDEX_REMOVE,
  PUT_TOKEN,
  PUT_VALUE,
  TAKE_VALUE,
  UPDATE_LIVE,
  WINDOW_ADD,
} from './redis-scripts.js';
import { revokedIdOf } from './revocation-message.js';
import { isLive, matchesQuery } from './token-query.js';
import {
  type CountLimit,
  EXPIRED_RETENTION_MS,
  type RevocationListener,
  type TokenChanges,
  type TokenQuery,
  type TokenRecord,
  type TokenSearchPage,
  type TokenStore,
  userGroup,
  type WindowCount,
} from './token-store.js';

export type { RedisClientLike, RedisSubscriberLike } from './redis-client.js';

/**
 * Options of `RedisTokenStore`.
 * @example
 * const options: RedisTokenStoreOptions = { redis, keyPrefix: 'bitbucket-proxy' };
 * const store = new RedisTokenStore(options);
 */
export interface RedisTokenStoreOptions {
  /**
   * An ioredis `Redis` (single node or Sentinel) or `Cluster` you created and own (ioredis 5 or
   * 6). Typed structurally (`RedisClientLike`), so your types need not import ioredis.
   */
  redis: RedisClientLike;
  /** Prefix of every key and of the revocation channel. Default `'bbt'`. */
  keyPrefix?: string;
  /** Most index entries one token-manager page examines. Default 1,000. */
  scanLimit?: number;
}

const KEY_PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;

const OPTIONS: Shape<RedisTokenStoreOptions> = {
  redis: withMethods(['evalsha'], 'an ioredis Redis or Cluster instance'),
  keyPrefix: (value, path) => {
    if (typeof value !== 'string' || !KEY_PREFIX.test(value))
      fail(path, `must be 1 to 64 letters, digits or _ . : -, got ${JSON.stringify(value)}`);
  },
  scanLimit: integer(),
};
const BATCH = 200;
const SUBSCRIBE_TIMEOUT_MS = 5_000;

/**
 * Tokens in Redis, shared by every proxy instance. Works on a single node, Sentinel and
 * Cluster: every command and script touches keys of one hash slot.
 *
 * Keys: `<p>:t:{<id>}` a hash per token (kept until its expiry plus `EXPIRED_RETENTION_MS`;
 * reads ignore it once expired), `<p>:u:{<user>}` a zset per user, `<p>:{all}:created` and
 * `<p>:{all}:expiring` the token manager's and the reminders' indexes, `<p>:c:{<key>}` claims,
 * `<p>:f:{<key>}` failure counters, `<p>:g:{<group>}` counting groups (a zset of ids scored by
 * expiry: the per-user cap and other bounds), `<p>:v:{<key>}` keyed values (`putValue`).
 * Revocations are published on `<p>:revoked`. User names
 * and keys are base64url-encoded in key names, so no name can address another key.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
 *   enableOfflineQueue: false,
 *   maxRetriesPerRequest: 1,
 *   commandTimeout: 1000,
 * });
 * const store = new RedisTokenStore({ redis });
 */
export class RedisTokenStore implements TokenStore {
  readonly kind = 'redis';
  private readonly redis: RedisClientLike;
  private readonly prefix: string;
  private readonly scanLimit: number;
  private readonly channel: string;

  constructor(options: Readonly<RedisTokenStoreOptions>) {
    object(OPTIONS)(options, '');
    if (options.redis === undefined) fail('redis', 'is required: an ioredis Redis or Cluster instance');
    const prefix = options.keyPrefix ?? DEFAULT_TOKEN_PREFIX;
    const scanLimit = options.scanLimit ?? 1_000;
    this.redis = options.redis;
    this.prefix = prefix;
    this.scanLimit = scanLimit;
    this.channel = `${prefix}:revoked`;
  }

  private tokenKey(id: string): string {
    return `${this.prefix}:t:{${id}}`;
  }

  private userKey(user: string): string {
    return `${this.prefix}:u:{${Buffer.from(foldName(user)).toString('base64url')}}`;
  }

  private get createdKey(): string {
    return `${this.prefix}:{all}:created`;
  }

  private get expiringKey(): string {
    return `${this.prefix}:{all}:expiring`;
  }

  private groupKey(group: string): string {
    return `${this.prefix}:g:{${Buffer.from(group).toString('base64url')}}`;
  }

  put(record: TokenRecord): Promise<void> {
    return this.guard(async () => {
      await this.reserve(record, userGroup(record.user), '');
      await this.write(record, userGroup(record.user));
    });
  }

  putCounted(record: TokenRecord, limit: CountLimit): Promise<boolean> {
    return this.guard(async () => {
      if (!(await this.reserve(record, limit.group, limit.max))) return false;
      try {
        await this.write(record, limit.group);
      } catch (err) {
        // Not stored: give the count back (best effort; a count left behind lapses at the expiry).
        await INDEX_REMOVE.run(this.redis, [this.groupKey(limit.group)], [record.id]).catch(() => {});
        throw err;
      }
      return true;
    });
  }

  /**
   * Counts the record into its group, atomically with the check (one script, one slot). A user's
   * group that does not exist yet first counts in the user's live tokens written before counting
   * groups existed (0.2.0), so an upgraded store keeps its cap.
   */
  private async reserve(record: TokenRecord, group: string, max: number | ''): Promise<boolean> {
    const key = this.groupKey(group);
    const args = (tell: '1' | '') => [record.id, record.expiresAt ?? '', max, Date.now(), tell];
    const seedable = group === userGroup(record.user);
    let counted = Number(await GROUP_RESERVE.run(this.redis, [key], args(seedable ? '1' : '')));
    if (counted === -1) {
      await this.seed(record.user, group);
      counted = Number(await GROUP_RESERVE.run(this.redis, [key], args('')));
    }
    return counted === 1;
  }

  /** Counts a user's live tokens that carry no group (or this one) into the user's group. */
  private async seed(user: string, group: string): Promise<void> {
    const ids = await this.redis.zrevrange(this.userKey(user), 0, -1);
    const members: Array<string | number> = [];
    for (let i = 0; i < ids.length; i += BATCH) {
      const batch = ids.slice(i, i + BATCH);
      const hashes = await Promise.all(batch.map((id) => this.redis.hgetall(this.tokenKey(id))));
      hashes.forEach((hash, j) => {
        const record = decode(batch[j]!, hash);
        const own = (hash['group'] ?? '') === '' || hash['group'] === group;
        if (record !== null && isLive(record, Date.now()) && own && sameUser(record.user, user))
          members.push(record.id, record.expiresAt ?? '+inf');
      });
    }
    if (members.length > 0) await GROUP_SEED.run(this.redis, [this.groupKey(group)], members);
  }

  /** Writes the record and its indexes (after it was counted). */
  private async write(record: TokenRecord, group: string): Promise<void> {
    const expires = record.expiresAt ?? '';
    const now = Date.now();
    // Indexes first: a failure after them leaves only stale index entries, cleaned when met.
    await INDEX_ADD.run(this.redis, [this.userKey(record.user)], [record.createdAt, record.id, expires, now]);
    await GLOBAL_ADD.run(
      this.redis,
      [this.createdKey, this.expiringKey],
      [record.createdAt, record.id, expires, now - EXPIRED_RETENTION_MS],
    );
    const before = await PUT_TOKEN.run(
      this.redis,
      [this.tokenKey(record.id)],
      [keepUntil(record.expiresAt), ...encode(record), 'group', group],
    );
    // An overwritten record counted elsewhere leaves that group.
    const left = before === '' ? null : String(before);
    if (left !== null && left !== group)
      await INDEX_REMOVE.run(this.redis, [this.groupKey(left)], [record.id]);
  }

  get(id: string): Promise<TokenRecord | null> {
    return this.guard(async () => {
      const record = decode(id, await this.redis.hgetall(this.tokenKey(id)));
      return record !== null && isLive(record, Date.now()) ? record : null;
    });
  }

  listByUser(user: string): Promise<TokenRecord[]> {
    return this.guard(async () => {
      const key = this.userKey(user);
      const ids = await this.redis.zrevrange(key, 0, -1);
      const records = await this.fetchLive(ids, [key]);
      return records.filter((r): r is TokenRecord => r !== null && sameUser(r.user, user));
    });
  }

  update(id: string, changes: TokenChanges): Promise<boolean> {
    return this.guard(async () => {
      const now = Date.now();
      const moved = changes.expiresAt !== undefined;
      const lifetime = moved ? keepUntil(changes.expiresAt ?? null) : '-';
      const updated = (await UPDATE_LIVE.run(
        this.redis,
        [this.tokenKey(id)],
        [now, lifetime, ...encodeChanges(changes)],
      )) as [string, string] | null;
      if (!Array.isArray(updated)) return false;
      const [user, group] = updated;
      // Other instances drop their cached copy of the old version at once.
      await this.redis.publish(this.channel, id);
      if (moved) {
        // The key's lifetime moved in the script; the expiry index and the user index follow.
        const expires = changes.expiresAt ?? '';
        await EXPIRY_INDEX_SET.run(this.redis, [this.expiringKey], [id, expires]);
        await INDEX_EXTEND.run(this.redis, [this.userKey(user)], [expires, now]);
        // The token counts in its group until its new expiry.
        await GROUP_MOVE.run(this.redis, [this.groupKey(group || userGroup(user))], [id, expires, now]);
      }
      return true;
    });
  }

  touch(id: string, at: number, ip: string | null): Promise<void> {
    return this.guard(async () => {
      await UPDATE_LIVE.run(
        this.redis,
        [this.tokenKey(id)],
        [Date.now(), '-', 'lastUsedAt', at, 'lastUsedIp', ip ?? ''],
      );
    });
  }

  delete(id: string): Promise<boolean> {
    return this.guard(async () => {
      const deleted = (await DELETE_TOKEN.run(this.redis, [this.tokenKey(id)], [Date.now()])) as
        | [string, number, string]
        | null;
      // Publish before index cleanup: other instances must drop their caches as early as possible.
      await this.redis.publish(this.channel, id);
      await Promise.all([
        deleted ? INDEX_REMOVE.run(this.redis, [this.userKey(deleted[0])], [id]) : undefined,
        // The token no longer counts in its group ('' = its owner's, records from 0.2.0).
        deleted
          ? INDEX_REMOVE.run(this.redis, [this.groupKey(deleted[2] || userGroup(deleted[0]))], [id])
          : undefined,
        INDEX_REMOVE.run(this.redis, [this.createdKey], [id]),
        INDEX_REMOVE.run(this.redis, [this.expiringKey], [id]),
      ]);
      return deleted !== null && Number(deleted[1]) === 1;
    });
  }

  search(query: TokenQuery): Promise<TokenSearchPage> {
    return this.guard(async () => {
      // A user filter walks that user's index; otherwise the global creation index.
      const index = query.user === undefined ? this.createdKey : this.userKey(query.user);
      const values: TokenRecord[] = [];
      let position = query.start;
      let budget = this.scanLimit;
      while (values.length < query.limit && budget > 0) {
        const want = Math.min(BATCH, budget);
        const batch = await this.redis.zrevrange(index, position, position + want - 1, 'WITHSCORES');
        const ids: string[] = [];
        let pastCreatedAfter = false;
        for (let i = 0; i < batch.length; i += 2) {
          // Newest first: once past `createdAfter`, nothing older can match.
          if (query.createdAfter !== undefined && Number(batch[i + 1]) <= query.createdAfter) {
            pastCreatedAfter = true;
            break;
          }
          ids.push(batch[i]!);
        }
        const records = await this.fetchLive(ids, [index]);
        let examined = 0;
        let removed = 0;
        for (const record of records) {
          if (values.length >= query.limit) break;
          examined++;
          if (record === null) removed++;
          else if (matchesQuery(record, query)) values.push(record);
        }
        // Entries that are gone were removed from the index, so later entries moved up by that many.
        position += examined - removed;
        budget -= examined;
        if (pastCreatedAfter && examined === ids.length) return { values, isLastPage: true };
        if (batch.length < want * 2 && examined === ids.length) return { values, isLastPage: true };
      }
      const total = await this.redis.zcard(index);
      return position >= total
        ? { values, isLastPage: true }
        : { values, isLastPage: false, nextStart: position };
    });
  }

  async countFailure(key: string, windowMs: number): Promise<number> {
    return (await this.increment(key, 1, windowMs)).count;
  }

  increment(key: string, by: number, windowMs: number): Promise<WindowCount> {
    return this.guard(async () => {
      const [count, left] = (await WINDOW_ADD.run(this.redis, [this.namedKey('f', key)], [by, windowMs])) as [
        number,
        number,
      ];
      return { count: Number(count), resetAt: Date.now() + Number(left) };
    });
  }

  failureCount(key: string): Promise<number> {
    return this.guard(async () => Number((await this.redis.get(this.namedKey('f', key))) ?? 0));
  }

  claim(key: string, ttlMs: number): Promise<boolean> {
    return this.guard(
      async () => Number(await CLAIM.run(this.redis, [this.namedKey('c', key)], [ttlMs])) === 1,
    );
  }

  putValue(key: string, value: string, ttlMs: number): Promise<void> {
    return this.guard(async () => {
      await PUT_VALUE.run(this.redis, [this.namedKey('v', key)], [value, ttlMs]);
    });
  }

  getValue(key: string): Promise<string | null> {
    return this.guard(async () => (await this.redis.get(this.namedKey('v', key))) ?? null);
  }

  takeValue(key: string): Promise<string | null> {
    return this.guard(
      async () =>
        ((await TAKE_VALUE.run(this.redis, [this.namedKey('v', key)], [])) as string | null) ?? null,
    );
  }

  expiringBetween(after: number, upTo: number, limit: number): Promise<TokenRecord[]> {
    return this.guard(async () => {
      const floor = Math.max(after, Date.now() - EXPIRED_RETENTION_MS);
      const found: TokenRecord[] = [];
      let offset = 0;
      for (let round = 0; round < 10 && found.length < limit; round++) {
        const want = Math.min(BATCH, limit - found.length);
        const batch = (await EXPIRY_RANGE.run(
          this.redis,
          [this.expiringKey],
          [floor, upTo, offset, want],
        )) as string[];
        const ids = batch.filter((_, i) => i % 2 === 0);
        const hashes = await Promise.all(ids.map((id) => this.redis.hgetall(this.tokenKey(id))));
        const gone: string[] = [];
        hashes.forEach((hash, i) => {
          const record = decode(ids[i]!, hash);
          if (record === null) gone.push(ids[i]!);
          // The hash is the truth: an index entry left behind by a failed update is skipped.
          else if (record.expiresAt !== null && record.expiresAt > floor && record.expiresAt <= upTo)
            found.push(record);
        });
        if (gone.length > 0) await INDEX_REMOVE.run(this.redis, [this.expiringKey], gone);
        offset += ids.length - gone.length;
        if (ids.length < want) break;
      }
      return found.sort((a, b) => a.expiresAt! - b.expiresAt! || (a.id < b.id ? -1 : 1)).slice(0, limit);
    });
  }

  private namedKey(kind: 'f' | 'c' | 'v', key: string): string {
    return `${this.prefix}:${kind}:{${Buffer.from(key).toString('base64url')}}`;
  }

  /**
   * Listens for revocations and changes on a duplicate of the client. A dropped subscription
   * reports the feed down (caches are then not trusted); once subscribed again it reports `'*'`
   * (messages may have been missed, so caches start over) and the feed up.
   */
  async subscribe(
    onRevoked: RevocationListener,
    onFeedState?: (connected: boolean) => void,
  ): Promise<() => Promise<void>> {
    // The subscriber queues its SUBSCRIBE until connected and re-subscribes after reconnects.
    const subscriber = this.redis.isCluster
      ? this.redis.duplicate([], { enableOfflineQueue: true })
      : this.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
    subscriber.on('error', () => {}); // reported through 'close' below; never crash the process
    subscriber.on('message', (channel: string, message: string) => {
      // Any client that may PUBLISH can write here: only a token id is taken from a message.
      const id = channel === this.channel ? revokedIdOf(message) : undefined;
      if (id !== undefined) onRevoked(id);
    });
    let ready = false;
    subscriber.on('ready', () => {
      if (!ready) {
        ready = true;
        return;
      }
      // Reconnected: the feed is up again only once the channel is subscribed again.
      subscriber.subscribe(this.channel).then(
        () => {
          onRevoked('*');
          onFeedState?.(true);
        },
        () => {},
      );
    });
    subscriber.on('close', () => {
      onFeedState?.(false);
      onRevoked('*');
    });
    const stop = async () => {
      subscriber.removeAllListeners('close');
      subscriber.disconnect();
    };
    try {
      await this.guard(() =>
        withTimeout(
          subscriber.subscribe(this.channel),
          SUBSCRIBE_TIMEOUT_MS,
          () => new Error('SUBSCRIBE timed out'),
        ),
      );
    } catch (err) {
      await stop();
      throw err;
    }
    return stop;
  }

  /**
   * Loads live records by id, aligned with `ids` (null where the token is gone or expired),
   * dropping those from the given indexes (expired ones stay in the expiry index).
   */
  private async fetchLive(ids: string[], indexKeys: string[]): Promise<Array<TokenRecord | null>> {
    const now = Date.now();
    const hashes = await Promise.all(ids.map((id) => this.redis.hgetall(this.tokenKey(id))));
    const records = hashes.map((hash, i) => {
      const record = decode(ids[i]!, hash);
      return record !== null && isLive(record, now) ? record : null;
    });
    const stale = ids.filter((_, i) => records[i] === null);
    if (stale.length > 0)
      await Promise.all(indexKeys.map((key) => INDEX_REMOVE.run(this.redis, [key], stale)));
    return records;
  }

  /** Any Redis failure is a StoreError: a 503 upstream, never "token not found". */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof TokenGateError) throw err;
      throw new StoreError(undefined, { cause: err });
    }
  }
}

/** When the token's key may go: its expiry plus the retention ('' = never). */
const keepUntil = (expiresAt: number | null) =>
  expiresAt === null ? '' : String(expiresAt + EXPIRED_RETENTION_MS);

// Redis hashes hold text only: none is the empty string.
const text = (value: StoredValue) => (value === null ? '' : String(value));

function encodeChanges(changes: TokenChanges): string[] {
  return encodeChangedFields(changes).flatMap(([field, value]) => [field.key, text(value)]);
}

function encode(record: TokenRecord): string[] {
  const values = encodeRecord(record);
  const fields: string[] = [];
  RECORD_FIELDS.forEach((field, i) => {
    // A record without a seal has no seal field (as before seals existed).
    if (field.key !== 'seal' || values[i] !== null) fields.push(field.key, text(values[i]!));
  });
  return fields;
}

const corrupt = (cause?: unknown) =>
  new StoreError('A token record in Redis is corrupt.', cause === undefined ? undefined : { cause });

function decode(id: string, hash: Record<string, string>): TokenRecord | null {
  if (hash['hash'] === undefined || hash['user'] === undefined) return null;
  return decodeRecord(id, { read: (field) => hash[field.key], blankIsNull: true, corrupt });
}
