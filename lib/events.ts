import type { TokenGateErrorCode } from './errors.js';
import type { Scope } from './model.js';

interface EventBase {
  /** ISO time of the event. */
  time: string;
  /** Client address as resolved by `clientIp`, or null when unknown. */
  clientIp: string | null;
}

/** A request was refused. Never carries a secret; `tokenId` and `user` only when known. */
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

/** A token was created, renamed or revoked, by `actor` (the owner or an administrator). */
export interface TokenChangedEvent extends EventBase {
  type: 'token.created' | 'token.renamed' | 'token.revoked';
  actor: string;
  user: string;
  tokenId: string;
  name: string;
}

export type AuditEvent = AuthDeniedEvent | AuthSucceededEvent | TokenChangedEvent;

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
