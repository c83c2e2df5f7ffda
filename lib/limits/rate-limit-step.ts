import type { Request, Response } from 'express';
import { RateLimitedError } from '../errors.js';
import type { EventListener } from '../events.js';
import { refuse } from '../http/respond.js';
import type { RateLimit, TokenInfo } from '../model.js';
import type { Step } from '../request/step.js';
import type { TokenStore } from '../stores/token-store.js';
import { withinRateLimit } from '../tokens/restrictions.js';
import { type Lease, LeaseCounter, remainingOf } from './lease-counter.js';
import type { RateLimitOptions } from './options.js';
import { policyMember, rateLimitMember, secondsUntil } from './rate-limit-headers.js';

/** What the rate-limit step is built from. */
export interface RateLimitStepOptions extends RateLimitOptions {
  store: TokenStore;
  /** Deadline of a reservation; past it the instance counts on its own for a while. */
  storeTimeoutMs: number;
  /** Receives an `auth.denied` (`RATE_LIMITED`) event for every refusal. */
  onEvent: EventListener;
  /** Counts refusals by limit and store failures (metrics); optional. */
  observer?: RateLimitObserver;
}

/** What the metrics count about rate limits. */
export interface RateLimitObserver {
  refused(limit: 'token' | 'user'): void;
  storeFailed(): void;
}

/** One limit that applies to a token: its counter key and its policy. */
interface Applied {
  name: 'token' | 'user';
  key: string;
  limit: number;
  windowMs: number;
}

/** Everything the step needs about one token, computed once per token info (cached records share it). */
interface Plan {
  limits: Applied[];
  /** The `RateLimit-Policy` value: it does not change from one request to the next. */
  policy: string;
}

function applied(name: 'token' | 'user', key: string, limit: RateLimit): Applied {
  return {
    name,
    key: `rate:${name === 'token' ? 't' : 'u'}:${key}:${limit.windowSeconds}`,
    limit: limit.requests,
    windowMs: limit.windowSeconds * 1000,
  };
}

/**
 * The token's limit: its own (within the maximum: a maximum lowered later wins over what the
 * token was given), else the gate's default.
 */
function tokenLimit(token: TokenInfo, options: Readonly<RateLimitOptions>): RateLimit | undefined {
  const own = token.rateLimit ?? null;
  const max = options.maxPerToken ?? options.perToken;
  if (own === null) return options.perToken;
  return max !== undefined && !withinRateLimit(own, max) ? max : own;
}

function planFor(token: TokenInfo, options: Readonly<RateLimitOptions>): Plan {
  const limits: Applied[] = [];
  const members: string[] = [];
  const own = tokenLimit(token, options);
  if (own !== undefined) {
    limits.push(applied('token', token.id, own));
    members.push(policyMember('token', own, token.id));
  }
  if (options.perUser !== undefined) {
    const user = token.user.toLowerCase();
    limits.push(applied('user', user, options.perUser));
    members.push(policyMember('user', options.perUser, user));
  }
  return { limits, policy: members.join(', ') };
}

/**
 * `protect()`'s rate-limit step, after the token's restrictions: counts each token request
 * against the token's limit and its owner's, fleet-wide through the store (in batches, see
 * `LeaseCounter`). A request within the limits passes with `RateLimit-Policy` and `RateLimit`
 * headers; one over a limit is refused with 429, `Retry-After` and the same headers. Requests
 * without a token, and tokens without a limit, cost one check.
 */
export function rateLimitStep(options: Readonly<RateLimitStepOptions>): Step {
  const observer = options.observer;
  const counter = new LeaseCounter(options.store, options.storeTimeoutMs, () => observer?.storeFailed());
  const plans = new WeakMap<TokenInfo, Plan>();
  const emit = options.onEvent;
  // Without a limit of the gate's own, only a token's own can apply: most requests skip the plan lookup.
  const gateLimits = options.perToken !== undefined || options.perUser !== undefined;

  /** Takes one request from each limit, from the `index`-th on; waits for reservations when needed. */
  function judge(
    req: Request,
    res: Response,
    next: (err?: unknown) => void,
    plan: Plan,
    token: TokenInfo,
    index: number,
    leases: Lease[],
  ): void {
    const now = Date.now();
    for (let i = index; i < plan.limits.length; i++) {
      const limit = plan.limits[i]!;
      const taken = counter.take(limit.key, limit.limit, limit.windowMs, now);
      if (taken === null) {
        refuseOver(req, res, plan, token, limit, leases, now);
        return;
      }
      if (taken instanceof Promise) {
        taken.then(() => judge(req, res, next, plan, token, i, leases), next);
        return;
      }
      leases.push(taken);
    }
    setHeaders(res, plan, leases, now);
    next();
  }

  function setHeaders(res: Response, plan: Plan, leases: Lease[], now: number): void {
    let value = '';
    for (let i = 0; i < leases.length; i++) {
      const limit = plan.limits[i]!;
      const lease = leases[i]!;
      const member = rateLimitMember(limit.name, remainingOf(lease, limit.limit), lease.resetAt, now);
      value = i === 0 ? member : `${value}, ${member}`;
    }
    res.setHeader('RateLimit-Policy', plan.policy);
    res.setHeader('RateLimit', value);
  }

  function refuseOver(
    req: Request,
    res: Response,
    plan: Plan,
    token: TokenInfo,
    over: Applied,
    leases: Lease[],
    now: number,
  ): void {
    const resetAt = counter.resetAt(over.key, now);
    // The limits taken before the one that refused, then that one with nothing left.
    const members = leases.map((lease, i) =>
      rateLimitMember(plan.limits[i]!.name, remainingOf(lease, plan.limits[i]!.limit), lease.resetAt, now),
    );
    members.push(rateLimitMember(over.name, 0, resetAt, now));
    res.setHeader('RateLimit-Policy', plan.policy);
    res.setHeader('RateLimit', members.join(', '));
    observer?.refused(over.name);
    const seconds = over.windowMs / 1000;
    const whose = over.name === 'token' ? 'This API token has' : `${token.user}'s API tokens have`;
    const error = new RateLimitedError(
      over.name,
      secondsUntil(resetAt, now),
      `${whose} made more than ${over.limit} requests in ${seconds} seconds. Try again in ${secondsUntil(resetAt, now)} seconds.`,
    );
    refuse(req, res, error, emit, { tokenId: token.id, user: token.user });
  }

  return function rateLimitStep(req, res, auth, next) {
    const token = auth.token;
    if (token === undefined || (!gateLimits && (token.rateLimit ?? null) === null)) {
      next();
      return;
    }
    let plan = plans.get(token);
    if (plan === undefined) {
      plan = planFor(token, options);
      plans.set(token, plan);
    }
    if (plan.limits.length === 0) {
      next();
      return;
    }
    judge(req, res, next, plan, token, 0, []);
  };
}
