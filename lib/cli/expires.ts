import { parseInstant } from '../validate.js';
import { CliError, EXIT } from './exit-codes.js';

const DAY_MS = 86_400_000;

/**
 * `--expires`: a lifetime in days (`90d`) or a date (`2030-01-31`, or an ISO time with a zone),
 * as an instant. The token service then holds it to the expiry policy.
 */
export function parseExpiry(value: string, now = Date.now()): number {
  const days = /^(\d{1,5})d$/.exec(value);
  if (days !== null) {
    const count = Number(days[1]);
    if (count < 1) throw new CliError(EXIT.USAGE, '--expires needs at least 1d.');
    return now + count * DAY_MS;
  }
  try {
    return parseInstant(value, 'expires') ?? Number.NaN;
  } catch {
    throw new CliError(
      EXIT.USAGE,
      `--expires takes a number of days (90d) or a date (2030-01-31 or 2030-01-31T12:00:00Z), not '${value}'.`,
    );
  }
}
