import type { TokenGateErrorCode } from './errors.js';
import type { Scope } from './model.js';

interface EventBase {
  /** ISO time of the event. */
  time: string;
  /** Client address as resolved by `clientIp`, or null when unknown (or no request). */
  clientIp: string | null;
}

/**
 * A request was refused (request path, management API, token pages, logins). Never carries a
 * secret; `tokenId` and `user` only when known.
 */
export interface AuthDeniedEvent extends EventBase {
  type: 'auth.denied';
  code: TokenGateErrorCode;
  method: string;
  path: string;
  tokenId?: string;
  user?: string;
}

/** A token request passed every check (emitted only with `auditSuccess: true`). */
export interface AuthSucceededEvent extends EventBase {
  type: 'auth.succeeded';
  method: string;
  path: string;
  tokenId: string;
  user: string;
  scope: Scope;
}

interface TokenEventBase extends EventBase {
  /** Who did it: the owner, an administrator, `system` (expiry) or the code's own caller. */
  actor: string;
  /** The token's owner. */
  user: string;
  tokenId: string;
  name: string;
}

/**
 * A token was created (also by rotation or copy: then `rotatedFrom`/`copiedFrom` name the
 * original), revoked, or changed (`fields` lists what changed).
 */
export interface TokenChangedEvent extends TokenEventBase {
  type: 'token.created' | 'token.updated' | 'token.revoked';
  /** `token.created`: the new token's scope. */
  scope?: Scope;
  /** `token.updated`: the fields that changed. */
  fields?: string[];
  /** `token.created` by `rotate()`: the token it replaces. */
  rotatedFrom?: string;
  /** `token.created` by `copy()`: the token it copies. */
  copiedFrom?: string;
  /**
   * `token.created` in access-token mode: how its Bitbucket access token was obtained — created
   * with the owner's password (`minted`), given by the owner (`linked`), or the one of the token
   * it was rotated or copied from (`shared`).
   */
  upstream?: 'minted' | 'linked' | 'shared';
}

/** A token was rotated: `replacedBy` is its successor; it keeps working until `expiresAt`. */
export interface TokenRotatedEvent extends TokenEventBase {
  type: 'token.rotated';
  replacedBy: string;
  expiresAt: string | null;
}

/**
 * Expiry reminders: `token.expiring` once per token and lead time (`leadDays` before
 * `expiresAt`), `token.expired` once at expiry, each once across a fleet sharing a store.
 */
export interface TokenExpiryEvent extends TokenEventBase {
  type: 'token.expiring' | 'token.expired';
  expiresAt: string;
  /** `token.expiring`: the lead time this reminder is for. */
  leadDays?: number;
}

/**
 * Access-token mode: the Bitbucket access token behind one of our tokens was deleted in
 * Bitbucket once ours was revoked or expired (`upstream.deleted`), or a deletion failed and will
 * be retried until Bitbucket confirms (`upstream.delete-failed`). Never carries the token itself.
 */
export interface UpstreamTokenEvent extends TokenEventBase {
  type: 'upstream.deleted' | 'upstream.delete-failed';
  /** The Bitbucket token's id, as an administrator sees it in Bitbucket. */
  upstreamTokenId: string;
  /** Why it is deleted: our token was revoked, expired, or never stored (a failed create). */
  reason: 'revoked' | 'expired' | 'abandoned';
  /** `upstream.delete-failed`: what went wrong. */
  error?: string;
  /** `upstream.delete-failed`: when the next attempt is due, or null when there is none. */
  retryAt?: string | null;
}

export type AuditEvent =
  | AuthDeniedEvent
  | AuthSucceededEvent
  | TokenChangedEvent
  | TokenRotatedEvent
  | TokenExpiryEvent
  | UpstreamTokenEvent;

/**
 * Receives audit events. Never receives a secret.
 * @example createTokenGate({ onEvent: (event) => logger.info(event, event.type) })
 */
export type EventListener = (event: AuditEvent) => void;

/** Wraps the user's listener so that a throwing listener can never break a request. */
export function safeEmitter(listener: EventListener | undefined): EventListener {
  if (listener === undefined) return () => {};
  if (typeof listener !== 'function') throw new TypeError('`onEvent` must be a function');
  return (event) => {
    try {
      listener(event);
    } catch {
      // A broken audit sink must not turn into a broken request path.
    }
  };
}
