import type { Scope, TokenInfo } from '../model.js';
import { foldName } from '../validate.js';

const DAY_MS = 86_400_000;

/** Counts of one group of live tokens. */
export interface StatCounts {
  live: number;
  /** With any restriction (allowed IPs, required headers, resources). */
  restricted: number;
  noExpiry: number;
  /** Expiring within `expiringDays`. */
  expiringSoon: number;
  neverUsed: number;
  /** Not used for `idleDays` (never used ones included) and older than that. */
  idle: number;
}

export interface TokenStats {
  users: number;
  byScope: Record<Scope, StatCounts>;
  total: StatCounts;
}

const zero = (): StatCounts => ({
  live: 0,
  restricted: 0,
  noExpiry: 0,
  expiringSoon: 0,
  neverUsed: 0,
  idle: 0,
});
const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));

/** `stats`: one pass over every live token. */
export async function tokenStats(
  tokens: AsyncIterable<TokenInfo>,
  options: { expiringDays: number; idleDays: number; now: number },
): Promise<TokenStats> {
  const byScope: Record<Scope, StatCounts> = { read: zero(), write: zero() };
  const total = zero();
  const users = new Set<string>();
  const soon = options.now + options.expiringDays * DAY_MS;
  const idleSince = options.now - options.idleDays * DAY_MS;
  for await (const token of tokens) {
    users.add(foldName(token.user));
    const expiresAt = ms(token.expiresAt);
    const lastUsedAt = ms(token.lastUsedAt);
    const facts: Array<keyof StatCounts> = ['live'];
    if (token.allowedIps !== null || token.requiredHeaders !== null || token.resources !== null)
      facts.push('restricted');
    if (expiresAt === null) facts.push('noExpiry');
    else if (expiresAt <= soon) facts.push('expiringSoon');
    if (lastUsedAt === null) facts.push('neverUsed');
    if ((lastUsedAt ?? Number.NEGATIVE_INFINITY) < idleSince && (ms(token.createdAt) ?? 0) < idleSince)
      facts.push('idle');
    for (const fact of facts) {
      byScope[token.scope][fact]++;
      total[fact]++;
    }
  }
  return { users: users.size, byScope, total };
}
