import { h } from 'preact';
import { renderToString } from 'preact-render-to-string';
import { describe, expect, it } from 'vitest';
import type { TokenInfo } from '../../lib/model.js';
import { Status } from '../../lib/pages/views/parts.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const now = Date.parse('2030-01-10T12:00:00Z');

/** The status badge of a token created `createdAgo` ms before now that expires `expiresIn` ms after. */
function badge(createdAgo: number, expiresIn: number | null): string {
  const info = {
    createdAt: new Date(now - createdAgo).toISOString(),
    expiresAt: expiresIn === null ? null : new Date(now + expiresIn).toISOString(),
  } as TokenInfo;
  return renderToString(h(Status, { info, now }));
}

describe('the status badge on the token lists', () => {
  it('flags a token in its last 7 days', () => {
    expect(badge(87 * DAY, 3 * DAY)).toContain('Expires soon');
    expect(badge(30 * DAY, 6 * DAY)).toContain('Expires soon');
  });

  it('does not flag a token with time left, or none that never expires', () => {
    expect(badge(1 * DAY, 89 * DAY)).toContain('Active');
    expect(badge(400 * DAY, null)).toContain('Active');
  });

  it('does not flag a token that lives days at most by design (a git sign-in, a CI job)', () => {
    expect(badge(10 * 60_000, 8 * HOUR - 10 * 60_000)).toContain('Active');
    expect(badge(60_000, 14 * 60_000)).toContain('Active');
    expect(badge(0, 7 * DAY)).toContain('Active');
  });
});
