import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../lib/errors.js';
import { parseInstant } from '../lib/validate.js';

const runs = Number(process.env['FUZZ_RUNS'] ?? 300);

describe('parseInstant', () => {
  it.each([
    ['2030-01-31T00:00:00Z', Date.UTC(2030, 0, 31)],
    ['2028-02-29T12:30:00Z', Date.UTC(2028, 1, 29, 12, 30)],
    ['2030-06-01', Date.UTC(2030, 5, 1)],
    ['2030-06-01T10:00:00.123+02:00', Date.UTC(2030, 5, 1, 8, 0, 0, 123)],
  ])('reads %s', (text, ms) => {
    expect(parseInstant(text, 'expiresAt')).toBe(ms);
  });

  it.each([
    '2030-02-30T00:00:00Z',
    '2030-02-29T00:00:00Z',
    '2030-04-31',
    '2030-13-01T00:00:00Z',
    '2030-00-10T00:00:00Z',
    '2030-01-01T24:00:00Z',
    '2030-01-01T23:60:00Z',
    '2030-01-01T23:59:60Z',
    '2030-01-01T10:00:00+25:00',
    '2030-01-01T10:00:00',
    '2030-1-1',
    'tomorrow',
    '',
  ])('refuses %j, naming the field', (text) => {
    expect(() => parseInstant(text, 'expiresAt')).toThrow(ValidationError);
    expect(() => parseInstant(text, 'expiresAt')).toThrow(/`expiresAt`/);
  });

  it('accepts a date exactly when the calendar has it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2000, max: 2200 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 31 }),
        (y, m, d) => {
          const text = `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}T00:00:00Z`;
          const exists = new Date(Date.UTC(y, m - 1, d)).getUTCMonth() === m - 1;
          if (exists) expect(parseInstant(text, 'x')).toBe(Date.UTC(y, m - 1, d));
          else expect(() => parseInstant(text, 'x')).toThrow(ValidationError);
        },
      ),
      { numRuns: runs },
    );
  });
});
