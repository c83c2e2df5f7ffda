import { FixedWindowCounter } from '../internal/fixed-window-counter.js';
import { integer, type Shape } from '../internal/options.js';
import type { TokenStore } from '../stores/token-store.js';

/**
 * What the token-attempt throttle (`throttle`) and the login throttles (`loginThrottle`,
 * `bitbucketLogin`'s `throttle`) share: the per-address limit, the window, their defaults, and
 * the counting of failures (in the store when it counts them, so a fleet shares the counts).
 */
interface FailureWindowOptions {
  maxFailuresPerIp?: number;
  windowMs?: number;
}

/** Every throttle default, written once. */
export const THROTTLE_DEFAULTS = {
  maxFailuresPerIp: 30,
  windowMs: 900_000,
  maxFailuresPerToken: 50,
  maxQueuedPerIp: 64,
  maxFailuresPerUser: 5,
} as const;

export const FAILURE_WINDOW_OPTIONS: Shape<FailureWindowOptions> = {
  maxFailuresPerIp: integer(),
  windowMs: integer(1_000),
};

/** Counts failures per key over fixed windows: in the store when it can, in process otherwise. */
export class FailureCounter {
  readonly windowMs: number;
  readonly #store: Pick<TokenStore, 'countFailure'> | undefined;
  readonly #local: FixedWindowCounter;

  constructor(store: Pick<TokenStore, 'countFailure'> | undefined, windowMs: number, maxKeys?: number) {
    this.#store = store;
    this.windowMs = windowMs;
    this.#local = new FixedWindowCounter(maxKeys);
  }

  /** Adds one failure to `key`: the count in its current window. Rejects when the store fails. */
  add(key: string): Promise<number> | number {
    return this.#store?.countFailure
      ? this.#store.countFailure(key, this.windowMs)
      : this.#local.add(key, this.windowMs);
  }
}
