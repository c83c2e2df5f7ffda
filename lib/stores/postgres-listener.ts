import { withTimeout } from '../internal/with-timeout.js';
import type { PgPoolClientLike, PgPoolLike } from './postgres-types.js';
import { revokedIdOf } from './revocation-message.js';
import { quote } from './sql-record.js';
import type { RevocationListener } from './token-store.js';

const CONNECT_TIMEOUT_MS = 5_000;
const MAX_RETRY_MS = 1_000;

/**
 * LISTENs for revocations on a client of its own from the pool, and keeps doing so: when the
 * connection drops it reports the feed down (caches are not trusted meanwhile) and `'*'`,
 * retries with a short backoff, and once listening again reports `'*'` and the feed up.
 */
export class PgRevocationListener {
  private client: PgPoolClientLike | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly pool: PgPoolLike,
    private readonly channel: string,
    private readonly onRevoked: RevocationListener,
    private readonly onFeedState: (connected: boolean) => void = () => {},
  ) {}

  /** Resolves once listening; rejects when the first connection fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.drop();
  }

  private async connect(): Promise<void> {
    const connecting = this.pool.connect();
    let client: PgPoolClientLike;
    try {
      client = await withTimeout(connecting, CONNECT_TIMEOUT_MS, () => new Error('connect timed out'));
    } catch (err) {
      // A connection that arrives after we gave up is handed back, destroyed.
      connecting.then((late) => late.release(true)).catch(() => {});
      throw err;
    }
    const onNotification = (message: { channel: string; payload?: string }) => {
      // Any role that may connect may NOTIFY this channel: only a token id is taken from it.
      const id = message.channel === this.channel ? revokedIdOf(message.payload) : undefined;
      if (id !== undefined) this.onRevoked(id);
    };
    const onLost = () => this.lost(client);
    client.on('notification', onNotification);
    client.on('error', onLost);
    client.on('end', onLost);
    try {
      await client.query(`LISTEN ${quote(this.channel)}`);
    } catch (err) {
      client.release(true);
      throw err;
    }
    if (this.stopped) {
      client.release(true);
      return;
    }
    this.client = client;
    this.failures = 0;
  }

  private lost(client: PgPoolClientLike): void {
    if (this.client !== client) return;
    this.drop();
    this.onFeedState(false);
    this.onRevoked('*');
    this.retry();
  }

  /** Destroys the listening client: a LISTENing connection never goes back into the pool. */
  private drop(): void {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    try {
      client.release(true);
    } catch {
      // already released by a concurrent error
    }
  }

  private retry(): void {
    if (this.stopped) return;
    const delay = Math.min(MAX_RETRY_MS, 100 * 2 ** this.failures);
    this.timer = setTimeout(() => {
      this.connect().then(
        () => {
          if (this.stopped) return;
          this.onRevoked('*'); // listening again: whatever was cached meanwhile goes
          this.onFeedState(true);
        },
        () => {
          this.failures++;
          this.retry();
        },
      );
    }, delay);
    this.timer.unref();
  }
}
