import { fail, object, type Shape } from '../internal/options.js';
import type { RateLimit } from '../model.js';
import { rateLimitProblem, withinRateLimit } from '../tokens/restrictions.js';

/**
 * Rate limits of token requests, counted across every instance sharing the store. A token's
 * own `rateLimit` (set on create or update, at most `maxPerToken`) replaces `perToken` for
 * that token; `perUser` counts every token of one owner together.
 * @example
 * createTokenGate({
 *   store, // Redis or PostgreSQL for a fleet: the counts are shared through it
 *   rateLimit: {
 *     perToken: { requests: 600, windowSeconds: 60 },
 *     perUser: { requests: 3_000, windowSeconds: 60 },
 *     maxPerToken: { requests: 1_200, windowSeconds: 60 },
 *   },
 * });
 */
export interface RateLimitOptions {
  /** The limit of each token without a `rateLimit` of its own. Default: none. */
  perToken?: RateLimit;
  /** The limit of one owner's requests over all their tokens. Default: none. */
  perUser?: RateLimit;
  /**
   * The most generous `rateLimit` an owner may give a token: never more requests in one
   * window, never a higher average rate. Default: `perToken` (owners may only narrow it);
   * without either, tokens may carry any limit.
   */
  maxPerToken?: RateLimit;
}

const limit = (value: unknown, path: string) => {
  const problem = rateLimitProblem(value);
  if (problem !== undefined) fail(path, problem);
};

export const RATE_LIMIT_OPTIONS: Shape<RateLimitOptions> = {
  perToken: limit,
  perUser: limit,
  maxPerToken: limit,
};

/** Checks the options (the default within the maximum) and answers the ceiling of tokens' own limits. */
export function checkRateLimitOptions(options: Readonly<RateLimitOptions>): RateLimit | undefined {
  object(RATE_LIMIT_OPTIONS)(options, 'rateLimit');
  const { perToken, maxPerToken } = options;
  if (perToken !== undefined && maxPerToken !== undefined && !withinRateLimit(perToken, maxPerToken))
    fail('rateLimit.perToken', 'must be within `rateLimit.maxPerToken`');
  return maxPerToken ?? perToken;
}
