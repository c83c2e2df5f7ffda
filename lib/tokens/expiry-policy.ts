import { ValidationError } from '../errors.js';
import { integer, type Shape } from '../internal/options.js';
import { daysToMs } from '../validate.js';

/**
 * When tokens expire (the gate's `expiry`).
 * @example
 * const expiry: ExpiryPolicy = { defaultDays: 90, maxDays: 365 };
 * createTokenGate({ expiry });
 */
export interface ExpiryPolicy {
  /** Days until expiry when a token is created without one. Default: `maxDays`, else never. */
  defaultDays?: number;
  /** Longest lifetime allowed; a longer request is refused, never clamped. Default: unlimited. */
  maxDays?: number;
}

export const EXPIRY_POLICY: Shape<ExpiryPolicy> = {
  defaultDays: integer(1, 36_500),
  maxDays: integer(1, 36_500),
};

/** Cross-field rules the shape cannot say. */
export function checkExpiryPolicy(policy: ExpiryPolicy): void {
  if (policy.defaultDays !== undefined && policy.maxDays !== undefined && policy.defaultDays > policy.maxDays)
    throw new TypeError('`expiry.defaultDays` must not exceed `expiry.maxDays`');
}

/** Expiry from a requested time or from the policy. Beyond `maxDays` is an error, not clamped. */
export function expiryFor(policy: ExpiryPolicy, requested: number | null, now: number): number | null {
  const { defaultDays, maxDays } = policy;
  if (requested === null) {
    const days = defaultDays ?? maxDays;
    return days === undefined ? null : now + daysToMs(days);
  }
  if (requested <= now) throw new ValidationError('expiresAt', '`expiresAt` must be in the future.');
  if (maxDays !== undefined && requested > now + daysToMs(maxDays) + 60_000)
    throw new ValidationError('expiresAt', `Tokens may live at most ${maxDays} days.`);
  return requested;
}

/**
 * A fresh expiry for a token made like another (rotation, copy): the same lifetime as the
 * original had, counted from now, within the policy; the policy default for one that never expired.
 */
export function renewedExpiry(
  policy: ExpiryPolicy,
  original: { createdAt: number; expiresAt: number | null },
  now: number,
): number | null {
  if (original.expiresAt === null) return expiryFor(policy, null, now);
  const lifetime = Math.max(original.expiresAt - original.createdAt, 60_000);
  const max = policy.maxDays === undefined ? lifetime : Math.min(lifetime, daysToMs(policy.maxDays));
  return now + max;
}
