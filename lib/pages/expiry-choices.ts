import { ValidationError } from '../errors.js';
import type { ExpiryPolicy } from '../tokens/expiry-policy.js';

const DAY_MS = 86_400_000;
const PRESETS = [7, 30, 90, 180, 365];

export interface ExpiryChoice {
  value: string;
  label: string;
}

/** What the create form offers: day counts within the policy, "never" where allowed, and a date. */
export interface ExpiryChoices {
  options: ExpiryChoice[];
  /** The preselected value. */
  preset: string;
  /** Earliest and latest date the date field accepts (`YYYY-MM-DD`). */
  minDate: string;
  maxDate: string | undefined;
}

const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function expiryChoices(policy: ExpiryPolicy, now: number): ExpiryChoices {
  const { maxDays, defaultDays } = policy;
  const days = new Set(PRESETS.filter((d) => maxDays === undefined || d <= maxDays));
  if (maxDays !== undefined) days.add(maxDays);
  if (defaultDays !== undefined) days.add(defaultDays);
  const options: ExpiryChoice[] = [...days]
    .sort((a, b) => a - b)
    .map((d) => ({ value: String(d), label: d === 1 ? '1 day' : `${d} days` }));
  if (maxDays === undefined && defaultDays === undefined) options.push({ value: 'never', label: 'Never' });
  options.push({ value: 'date', label: 'On a date…' });
  const preset = String(defaultDays ?? maxDays ?? 90);
  return {
    options,
    preset,
    minDate: isoDate(now),
    // A date means "until the end of that day (UTC)", which must stay within maxDays.
    maxDate: maxDays === undefined ? undefined : isoDate(now + maxDays * DAY_MS - DAY_MS),
  };
}

/**
 * The expiry a form asked for, as an instant; null for "never" (or the policy's default). The
 * token service judges it against the policy.
 */
export function requestedFormExpiry(
  choices: ExpiryChoices,
  expiry: string | undefined,
  date: string | undefined,
  now: number,
): number | null {
  const value = expiry === undefined || expiry === '' ? choices.preset : expiry;
  if (!choices.options.some((o) => o.value === value))
    throw new ValidationError('expiry', 'Choose one of the offered expiry times.');
  if (value === 'never') return null;
  if (value === 'date') {
    if (date === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(date))
      throw new ValidationError('expiryDate', 'Give the expiry date as YYYY-MM-DD.');
    const start = Date.parse(`${date}T00:00:00Z`);
    if (!Number.isFinite(start) || isoDate(start) !== date)
      throw new ValidationError('expiryDate', 'That date does not exist.');
    const end = start + DAY_MS;
    if (end <= now) throw new ValidationError('expiryDate', 'The expiry date must be today or later.');
    if (choices.maxDate !== undefined && date > choices.maxDate)
      throw new ValidationError('expiryDate', `The expiry date may be at most ${choices.maxDate}.`);
    return end;
  }
  return now + Number(value) * DAY_MS;
}
