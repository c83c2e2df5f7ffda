import { type BitbucketTokenApi, bearerAuthorization } from '../bitbucket/token-api.js';
import type { EventListener } from '../events.js';
import { BoundedCache } from '../internal/bounded-cache.js';
import { storeCall } from '../internal/with-timeout.js';
import type { TokenRecord } from '../model.js';
import { EXPIRED_RETENTION_MS, type TokenStore } from '../stores/token-store.js';
import { isTombstone, tombstoneOf } from '../tokens/tombstone.js';
import type { CredentialBox, UpstreamCredential } from './credential-box.js';

/**
 * Retries of failed deletions of Bitbucket tokens (`bitbucketAccessTokens({ retry })`).
 * @example
 * const retry: RetryOptions = { initialDelayMs: 5_000, maxDelayMs: 3_600_000 };
 * bitbucketAccessTokens({
 *   baseUrl,
 *   encryptionKeys: [{ id: 'k1', key: process.env.TOKEN_ENCRYPTION_KEY! }],
 *   retry,
 * });
 */
export interface RetryOptions {
  /** Delay before the first retry of a failed deletion; doubled each time. Default 1,000 ms. */
  initialDelayMs?: number;
  /** Longest delay between two retries. Default 300,000 ms (5 minutes). */
  maxDelayMs?: number;
}

export interface DeletionParts {
  api: BitbucketTokenApi;
  box: CredentialBox;
  /** `Authorization` of the administrator's token, when configured. */
  adminAuthorization: string | undefined;
  store: TokenStore;
  storeTimeoutMs: number;
  emit: EventListener;
  retry: Required<RetryOptions>;
  now: () => number;
}

type Reason = 'revoked' | 'expired' | 'abandoned';

interface Job {
  record: TokenRecord;
  credential: UpstreamCredential;
  reason: Reason;
  attempt: number;
  /** A tombstone holds this job in the store (durable across restarts). */
  tombstoned: boolean;
}

type Outcome = { done: true; deleted: boolean } | { done: false; error: string };

/**
 * Deletes the Bitbucket access tokens of revoked and expired tokens, and retries until Bitbucket
 * confirms: the first attempt at once, then with doubling delays (in process), and, for a
 * revoked token, a tombstone in the store so a restarted or another instance retries too. A
 * Bitbucket token shared by another live token (rotation, copy) is kept. Deletion uses the
 * administrator's token when configured, else the Bitbucket token itself.
 */
export class UpstreamDeletions {
  readonly #parts: DeletionParts;
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #pending = new Map<string, NodeJS.Timeout>();
  readonly #done = new BoundedCache<string, true>(100_000, 2 * EXPIRED_RETENTION_MS);
  #closed = false;

  constructor(parts: DeletionParts) {
    this.#parts = parts;
  }

  /**
   * Deletes the Bitbucket token behind a revoked or expired record. Resolves after the first
   * attempt (so a revocation normally returns once Bitbucket confirmed); never rejects.
   */
  release(record: TokenRecord, reason: 'revoked' | 'expired'): Promise<void> {
    if (record.upstream === null || this.#closed || this.#done.has(record.id) || this.#pending.has(record.id))
      return Promise.resolve();
    const running = this.#inFlight.get(record.id);
    if (running !== undefined) return running;
    const work = this.#start(record, reason).finally(() => this.#inFlight.delete(record.id));
    this.#inFlight.set(record.id, work);
    return work;
  }

  /** Deletes a freshly minted Bitbucket token whose token of ours could not be stored. */
  async abandon(record: TokenRecord, credential: UpstreamCredential): Promise<void> {
    await this.#attempt({ record, credential, reason: 'abandoned', attempt: 1, tombstoned: false });
  }

  /** Stops retrying (the gate closes). */
  close(): void {
    this.#closed = true;
    for (const timer of this.#pending.values()) clearTimeout(timer);
    this.#pending.clear();
  }

  async #start(record: TokenRecord, reason: Reason): Promise<void> {
    let credential: UpstreamCredential;
    try {
      credential = await this.#parts.box.open(record);
    } catch {
      // Without the key the Bitbucket token cannot be named, let alone deleted: say so once.
      this.#done.set(record.id, true);
      this.#report('upstream.delete-failed', record, undefined, reason, {
        error: 'The Bitbucket credential cannot be decrypted with the configured keys.',
        retryAt: null,
      });
      return;
    }
    await this.#attempt({ record, credential, reason, attempt: 1, tombstoned: isTombstone(record) });
  }

  async #attempt(job: Job): Promise<void> {
    if (this.#closed) return;
    this.#pending.delete(job.record.id);
    let outcome: Outcome;
    try {
      outcome = (await this.#sharedByLiveToken(job))
        ? { done: true, deleted: false }
        : await this.#deleteOnce(job.credential);
    } catch (err) {
      outcome = { done: false, error: err instanceof Error ? err.message : 'Bitbucket failed.' };
    }
    const now = this.#parts.now();
    const diedInBitbucket = job.credential.expiresAt !== null && job.credential.expiresAt <= now;
    if (outcome.done || diedInBitbucket) {
      this.#done.set(job.record.id, true);
      if (outcome.done && outcome.deleted)
        this.#report('upstream.deleted', job.record, job.credential, job.reason);
      if (job.tombstoned) await this.#call(() => this.#parts.store.delete(job.record.id)).catch(() => {});
      return;
    }
    if (job.reason === 'revoked' && !job.tombstoned) job.tombstoned = await this.#tombstone(job.record, now);
    const { initialDelayMs, maxDelayMs } = this.#parts.retry;
    const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(job.attempt - 1, 30));
    // Reported on attempts 1, 2, 4, 8, …: a deletion stuck for days does not flood the audit log.
    if ((job.attempt & (job.attempt - 1)) === 0)
      this.#report('upstream.delete-failed', job.record, job.credential, job.reason, {
        error: outcome.error,
        retryAt: new Date(now + delay).toISOString(),
      });
    const timer = setTimeout(() => {
      const retry = this.#attempt({ ...job, attempt: job.attempt + 1 }).finally(() =>
        this.#inFlight.delete(job.record.id),
      );
      this.#inFlight.set(job.record.id, retry);
    }, delay);
    timer.unref();
    this.#pending.set(job.record.id, timer);
  }

  /** True when another live token of the owner is backed by the same Bitbucket token. */
  async #sharedByLiveToken(job: Job): Promise<boolean> {
    if (job.reason === 'abandoned') return false;
    const { record, credential } = job;
    const live = await this.#call(() => this.#parts.store.listByUser(record.user));
    for (const other of live) {
      if (other.id === record.id || other.upstream === null) continue;
      const shared = await this.#parts.box.open(other).then(
        (c) => c.tokenId === credential.tokenId,
        () => false,
      );
      if (shared) return true;
    }
    return false;
  }

  async #deleteOnce(credential: UpstreamCredential): Promise<Outcome> {
    const admin = this.#parts.adminAuthorization;
    const answer = await this.#parts.api.delete(
      credential.slug,
      credential.tokenId,
      admin ?? bearerAuthorization(credential.token),
    );
    if (answer.ok) return { done: true, deleted: true };
    // The token itself no longer authenticates: Bitbucket revoked or expired it already.
    if (admin === undefined && answer.status === 401 && answer.refusal === 'unauthenticated')
      return { done: true, deleted: false };
    return {
      done: false,
      error: `Bitbucket refused the deletion (${answer.status}${answer.message === undefined ? '' : `: ${answer.message}`}).`,
    };
  }

  /** Keeps the revoked record as a tombstone where the store retains expired records. */
  async #tombstone(record: TokenRecord, now: number): Promise<boolean> {
    if (this.#parts.store.expiringBetween === undefined) return false;
    try {
      await this.#call(() => this.#parts.store.put(tombstoneOf(record, now)));
      return true;
    } catch {
      return false;
    }
  }

  #call<T>(work: () => Promise<T>): Promise<T> {
    return storeCall(work, this.#parts.storeTimeoutMs);
  }

  #report(
    type: 'upstream.deleted' | 'upstream.delete-failed',
    record: TokenRecord,
    credential: UpstreamCredential | undefined,
    reason: Reason,
    extra: { error?: string; retryAt?: string | null } = {},
  ): void {
    this.#parts.emit({
      type,
      time: new Date(this.#parts.now()).toISOString(),
      clientIp: null,
      actor: 'system',
      user: record.user,
      tokenId: record.id,
      name: record.name,
      upstreamTokenId: credential?.tokenId ?? 'unknown',
      reason,
      ...extra,
    });
  }
}
