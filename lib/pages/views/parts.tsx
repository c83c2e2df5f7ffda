import type { ComponentChildren } from 'preact';
import type { Scope, TokenInfo } from '../../model.js';

const DAY_MS = 86_400_000;
/** Tokens expiring within this many days are flagged. */
const SOON_DAYS = 7;

/** `2026-11-29 14:03 UTC`: the same on every server, whatever its time zone. */
export function formatTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

export const Time = ({ iso }: { iso: string }) => <time datetime={iso}>{formatTime(iso)}</time>;

function inDays(iso: string, now: number): string {
  const days = Math.round((Date.parse(iso) - now) / DAY_MS);
  if (days <= 0) return 'today';
  return days === 1 ? 'in 1 day' : `in ${days} days`;
}

export const ScopeBadge = ({ scope }: { scope: Scope }) => (
  <span class={`badge ${scope}`}>{scope === 'write' ? 'Write' : 'Read'}</span>
);

/**
 * "Expires soon" for a token within its last days. Not for one that lives days at most by design
 * (a git sign-in's hours, a CI job's minutes): it would be flagged from its first minute.
 */
export function Status({ info, now }: { info: TokenInfo; now: number }) {
  const expires = info.expiresAt === null ? null : Date.parse(info.expiresAt);
  const shortLived = expires !== null && expires - Date.parse(info.createdAt) <= SOON_DAYS * DAY_MS;
  const soon = expires !== null && !shortLived && expires - now < SOON_DAYS * DAY_MS;
  return soon ? <span class="badge expiring">Expires soon</span> : <span class="badge active">Active</span>;
}

export function Expires({ info, now }: { info: TokenInfo; now: number }) {
  if (info.expiresAt === null) return <span>Never</span>;
  return (
    <span>
      <Time iso={info.expiresAt} />
      <span class="sub">{inDays(info.expiresAt, now)}</span>
    </span>
  );
}

export function LastUsed({ info }: { info: TokenInfo }) {
  if (info.lastUsedAt === null) return <span class="sub">Never used</span>;
  return (
    <span>
      <Time iso={info.lastUsedAt} />
      {info.lastUsedIp !== null && <span class="sub">from {info.lastUsedIp}</span>}
    </span>
  );
}

/** How a token was issued when not by hand: "Signed in by git from 10.0.0.7" (OAuth) or "Issued to CI …" (federation). */
export function originText(info: TokenInfo): string | null {
  const { origin } = info;
  if (origin === null) return null;
  const from = origin.ip === null ? '' : ` from ${origin.ip}`;
  return origin.via === 'oauth'
    ? `Signed in by ${origin.client}${from}`
    : `Issued to CI (${origin.client})${from}`;
}

export function Origin({ info }: { info: TokenInfo }) {
  const text = originText(info);
  return text === null ? null : <span class="sub">{text}</span>;
}

export function isRestricted(info: TokenInfo): boolean {
  return (
    info.allowedIps !== null ||
    info.requiredHeaders !== null ||
    info.resources !== null ||
    (info.rateLimit ?? null) !== null
  );
}

export function Restrictions({ info }: { info: TokenInfo }) {
  if (!isRestricted(info)) return <span class="sub">None</span>;
  return (
    <ul class="restrictions">
      {info.allowedIps !== null && <li>IPs: {info.allowedIps.join(', ')}</li>}
      {info.requiredHeaders !== null && <li>Headers: {Object.keys(info.requiredHeaders).join(', ')}</li>}
      {info.resources !== null && <li>Repositories: {info.resources.join(', ')}</li>}
      {info.rateLimit !== null && (
        <li>
          Rate limit: {info.rateLimit.requests} in {info.rateLimit.windowSeconds} s
        </li>
      )}
    </ul>
  );
}

export type Tone = 'success' | 'error' | 'warning';

export const Alert = ({ tone, children }: { tone: Tone; children: ComponentChildren }) => (
  <div class={`alert ${tone}`} role={tone === 'error' ? 'alert' : 'status'}>
    {children}
  </div>
);

/** A field's error text, tied to its input by id. */
export const FieldError = ({ id, message }: { id: string; message: string | undefined }) =>
  message === undefined ? null : (
    <p class="error-text" id={id}>
      {message}
    </p>
  );
