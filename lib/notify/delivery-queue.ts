/**
 * A bounded queue of deliveries (e-mails, webhook calls) worked off in the background: adding
 * never waits, so a sink never blocks a request; a failed delivery is retried with exponential
 * backoff and jitter; a full queue drops the new delivery and counts it.
 */

/** One delivery: resolves when done; rejects to be retried, or with `permanent` set to give up. */
export type Deliver = () => Promise<void>;

/** Retries of a sink. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Wait before the first retry; each next one doubles (with up to 50 % jitter), at most 10 minutes. */
  firstDelayMs: number;
}

/** A failure that retrying will not mend (e.g. a 4xx answer): the delivery is given up at once. */
export class PermanentFailure extends Error {}

/** What a queue reports: deliveries done, given up, and dropped because the queue was full. */
export interface DeliveryStats {
  delivered: number;
  failed: number;
  dropped: number;
}

const MAX_DELAY_MS = 600_000;

export class DeliveryQueue {
  readonly stats: DeliveryStats = { delivered: 0, failed: 0, dropped: 0 };
  readonly #waiting: Array<{ deliver: Deliver; attempt: number }> = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #maxQueued: number;
  readonly #retry: RetryPolicy;
  readonly #onFailure: (err: unknown) => void;
  #active = 0;
  #closed = false;
  #idle: Array<() => void> = [];

  constructor(maxQueued: number, retry: RetryPolicy, onFailure: (err: unknown) => void) {
    this.#maxQueued = maxQueued;
    this.#retry = retry;
    this.#onFailure = onFailure;
  }

  /** Queues a delivery; false when the queue is full (or closed) and it was dropped. */
  add(deliver: Deliver): boolean {
    if (this.#closed || this.#waiting.length + this.#timers.size + this.#active >= this.#maxQueued) {
      this.stats.dropped++;
      return false;
    }
    this.#waiting.push({ deliver, attempt: 1 });
    this.#pump();
    return true;
  }

  /** Resolves once nothing is queued, running or waiting for a retry (tests, shutdown). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops retries and drops what is queued; deliveries under way finish. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#waiting.length = 0;
    this.#settle();
  }

  /** True when nothing is queued, running or waiting for a retry. */
  isIdle(): boolean {
    return this.#active === 0 && this.#waiting.length === 0 && this.#timers.size === 0;
  }

  #settle(): void {
    if (!this.isIdle()) return;
    const waiters = this.#idle;
    this.#idle = [];
    for (const resolve of waiters) resolve();
  }

  /** One delivery at a time per sink: receivers see events in order, and a slow one holds one socket. */
  #pump(): void {
    if (this.#active > 0) return;
    const next = this.#waiting.shift();
    if (next === undefined) {
      this.#settle();
      return;
    }
    this.#active++;
    next
      .deliver()
      .then(
        () => {
          this.stats.delivered++;
        },
        (err: unknown) => {
          if (err instanceof PermanentFailure || next.attempt >= this.#retry.attempts || this.#closed) {
            this.stats.failed++;
            this.#onFailure(err);
            return;
          }
          const base = Math.min(MAX_DELAY_MS, this.#retry.firstDelayMs * 2 ** (next.attempt - 1));
          const timer = setTimeout(
            () => {
              this.#timers.delete(timer);
              this.#waiting.push({ deliver: next.deliver, attempt: next.attempt + 1 });
              this.#pump();
            },
            base + Math.random() * base * 0.5,
          );
          timer.unref();
          this.#timers.add(timer);
        },
      )
      .finally(() => {
        this.#active--;
        this.#pump();
      });
  }
}
