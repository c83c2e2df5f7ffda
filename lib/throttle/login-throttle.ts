import { TooManyAttemptsError } from '../errors.js';
import { BoundedCache } from '../internal/bounded-cache.js';
import { integer, type Shape } from '../internal/options.js';
import type { TokenStore } from '../stores/token-store.js';
import { foldName } from '../validate.js';
import { addressKey } from './address-key.js';
import { FAILURE_WINDOW_OPTIONS, FailureCounter, THROTTLE_DEFAULTS } from './failure-window.js';

/**
 * Limits on failed password logins: the token pages' (the gate's `loginThrottle`) and
 * `bitbucketLogin`'s (its `throttle`).
 * @example
 * const loginThrottle: LoginThrottleOptions = {
 *   maxFailuresPerIp: 50,
 *   maxFailuresPerUser: 5,
 *   windowMs: 600_000,
 * };
 * createTokenGate({ loginThrottle });
 */
export interface LoginThrottleOptions {
  /** Failed logins one client address (an IPv6 /64) may make per window. Default 30. */
  maxFailuresPerIp?: number;
  /**
   * Failed logins for one user name from one address per window. Default 5. There is no
   * fleet-wide per-user limit: anyone could use one to lock a victim out.
   */
  maxFailuresPerUser?: number;
  /** Window length. Default 900,000 ms (15 minutes). */
  windowMs?: number;
}

export const LOGIN_THROTTLE_OPTIONS: Shape<LoginThrottleOptions> = {
  ...FAILURE_WINDOW_OPTIONS,
  maxFailuresPerUser: integer(),
};

const MAX_BLOCKS = 100_000;

/**
 * Counts failed logins per address and per address + user name, shared through the store when
 * it counts failures (in process otherwise), and refuses with 429 once either is over its limit.
 */
export class LoginThrottle {
  readonly #perIp: number;
  readonly #perUser: number;
  readonly #counter: FailureCounter;
  readonly #blocked: BoundedCache<string, true>;
  /** Keys that went over their limit: an address, or a user name from one address (read by metrics). */
  readonly blocks = { address: 0, user: 0 };

  constructor(
    store: Pick<TokenStore, 'countFailure'> | undefined,
    options: Readonly<LoginThrottleOptions> = {},
  ) {
    const windowMs = options.windowMs ?? THROTTLE_DEFAULTS.windowMs;
    this.#perIp = options.maxFailuresPerIp ?? THROTTLE_DEFAULTS.maxFailuresPerIp;
    this.#perUser = options.maxFailuresPerUser ?? THROTTLE_DEFAULTS.maxFailuresPerUser;
    this.#counter = new FailureCounter(store, windowMs);
    this.#blocked = new BoundedCache(MAX_BLOCKS, windowMs);
  }

  /**
   * Throws TooManyAttemptsError when the address, or this user from this address, is blocked.
   * Without a user (single sign-on names none until it succeeds) only the address is judged.
   */
  assertAllowed(clientIp: string | null, user?: string): void {
    const now = Date.now();
    for (const key of this.#keys(clientIp, user)) {
      const until = this.#blocked.expiresAt(key, now);
      if (until !== undefined)
        throw new TooManyAttemptsError(
          Math.ceil((until - now) / 1000),
          'Too many failed logins. Try again later.',
        );
    }
  }

  /** Counts a failed login (for the address alone without a user); never fails the (already refused) login itself. */
  async recordFailure(clientIp: string | null, user?: string): Promise<void> {
    const [ipKey, userKey] = this.#keys(clientIp, user);
    await Promise.all([
      this.#count(ipKey, this.#perIp, 'address'),
      userKey === undefined ? undefined : this.#count(userKey, this.#perUser, 'user'),
    ]);
  }

  async #count(key: string, limit: number, kind: 'address' | 'user'): Promise<void> {
    try {
      const count = await this.#counter.add(key);
      if (count >= limit) {
        if (!this.#blocked.has(key)) this.blocks[kind]++;
        this.#blocked.set(key, true);
      }
    } catch {
      // Best effort while the store is down: the login itself needs Bitbucket anyway.
    }
  }

  #keys(clientIp: string | null, user: string | undefined): [string, string] | [string] {
    const address = addressKey(clientIp);
    return user === undefined
      ? [`login:${address}`]
      : [`login:${address}`, `login:${address}:${foldName(user)}`];
  }
}
