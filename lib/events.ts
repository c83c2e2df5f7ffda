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
 * @example
 * createTokenGate({
 *   onEvent: (event) => {
 *     if (event.type === 'auth.denied') console.warn(`${event.code} ${event.method} ${event.path}`);
 *   },
 * });
 */
export interface AuthDeniedEvent extends EventBase {
  /** `'auth.denied'`. */
  type: 'auth.denied';
  /** Why: the refusal's code, e.g. `SCOPE_INSUFFICIENT` (its status is `statusOf(code)`). */
  code: TokenGateErrorCode;
  /** The request's HTTP method. */
  method: string;
  /** The request's full path, without the query string. */
  path: string;
  /** The token's id, when the request carried a token that parsed. */
  tokenId?: string;
  /** The token's owner, the claimed or logged-in user name, when known. */
  user?: string;
}

/**
 * A token request passed every check (emitted only with `auditSuccess: true`).
 * @example
 * createTokenGate({
 *   auditSuccess: true,
 *   onEvent: (event) => {
 *     if (event.type === 'auth.succeeded') console.log(`${event.user} ${event.method} ${event.path}`);
 *   },
 * });
 */
export interface AuthSucceededEvent extends EventBase {
  /** `'auth.succeeded'`. */
  type: 'auth.succeeded';
  /** The request's HTTP method. */
  method: string;
  /** The request's full path, without the query string. */
  path: string;
  /** The token's id. */
  tokenId: string;
  /** The token's owner. */
  user: string;
  /** The token's scope. */
  scope: Scope;
}

interface TokenEventBase extends EventBase {
  /** Who did it: the owner, an administrator, `system` (expiry) or the code's own caller. */
  actor: string;
  /** The token's owner. */
  user: string;
  /** The token's id. */
  tokenId: string;
  /** The token's name (its new name, for a rename). */
  name: string;
}

/**
 * A token was created (also by rotation or copy: then `rotatedFrom`/`copiedFrom` name the
 * original), revoked, or changed (`fields` lists what changed).
 * @example
 * createTokenGate({
 *   onEvent: (event) => {
 *     if (event.type === 'token.revoked')
 *       console.log(`${event.actor} revoked ${event.user}'s token ${event.name}`);
 *   },
 * });
 */
export interface TokenChangedEvent extends TokenEventBase {
  /** What happened to the token. */
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

/**
 * A token was rotated: `replacedBy` is its successor; it keeps working until `expiresAt`.
 * @example
 * createTokenGate({
 *   onEvent: (event) => {
 *     if (event.type === 'token.rotated')
 *       console.log(`${event.tokenId} → ${event.replacedBy} (old one ends ${event.expiresAt})`);
 *   },
 * });
 */
export interface TokenRotatedEvent extends TokenEventBase {
  /** `'token.rotated'`. */
  type: 'token.rotated';
  /** The id of the token that replaces it. */
  replacedBy: string;
  /** When the old token stops working (ISO): the end of the grace period, or now with `graceMs: 0`. */
  expiresAt: string | null;
}

/**
 * Expiry reminders: `token.expiring` once per token and lead time (`leadDays` before
 * `expiresAt`), `token.expired` once at expiry, each once across a fleet sharing a store.
 * @example
 * createTokenGate({
 *   onEvent: (event) => {
 *     if (event.type === 'token.expiring')
 *       console.log(`Tell ${event.user}: token "${event.name}" expires in ${event.leadDays} days`);
 *   },
 * });
 */
export interface TokenExpiryEvent extends TokenEventBase {
  /** A reminder before expiry, or the expiry itself. */
  type: 'token.expiring' | 'token.expired';
  /** When the token expires (or expired), ISO. */
  expiresAt: string;
  /** `token.expiring`: the lead time this reminder is for. */
  leadDays?: number;
}

/**
 * Access-token mode: the Bitbucket access token behind one of our tokens was deleted in
 * Bitbucket once ours was revoked or expired (`upstream.deleted`), or a deletion failed and will
 * be retried until Bitbucket confirms (`upstream.delete-failed`). Never carries the token itself.
 * @example
 * createTokenGate({
 *   onEvent: (event) => {
 *     if (event.type === 'upstream.delete-failed')
 *       console.warn(`Bitbucket token ${event.upstreamTokenId}: ${event.error}`);
 *   },
 * });
 */
export interface UpstreamTokenEvent extends TokenEventBase {
  /** The deletion succeeded, or failed and will be retried. */
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

/**
 * A CI job exchanged its identity token for an API token (`federation` trust rules). Names the
 * issuer, the job's subject and `jti`, and the rule that matched; never the job token itself.
 * The token's creation is also reported as `token.created` with `actor: 'federation'`.
 * @example
 * createTokenGate({
 *   onEvent: (event) => {
 *     if (event.type === 'token.exchanged')
 *       console.log(`${event.subject} (${event.issuer}) got ${event.tokenId} by rule ${event.rule}`);
 *   },
 * });
 */
export interface TokenExchangedEvent extends EventBase {
  /** `'token.exchanged'`. */
  type: 'token.exchanged';
  /** The job token's issuer (`iss`), one of the rules' issuers. */
  issuer: string;
  /** The job token's subject (`sub`), e.g. `project_path:ops/deploy:ref_type:branch:ref:main`. */
  subject: string;
  /** The job token's `jti`, or null when the issuer sets none. */
  jti: string | null;
  /** The name of the rule that matched. */
  rule: string;
  /** The issued token's owner. */
  user: string;
  /** The issued token's id. */
  tokenId: string;
  /** The issued token's scope. */
  scope: Scope;
  /** When the issued token stops working (ISO). */
  expiresAt: string;
}

/**
 * A token exchange was refused. `reason` says which check failed, for the operator only: the
 * client is told no more than `invalid_request`. Never carries the job token.
 * @example
 * createTokenGate({
 *   onEvent: (event) => {
 *     if (event.type === 'token.exchange-refused') console.warn(`exchange refused: ${event.reason}`);
 *   },
 * });
 */
export interface TokenExchangeRefusedEvent extends EventBase {
  /** `'token.exchange-refused'`. */
  type: 'token.exchange-refused';
  /**
   * Which check failed: `malformed`, `algorithm`, `issuer` (not a trusted one), `unknown_key`,
   * `signature`, `expired`, `too_old`, `not_yet_valid`, `audience`, `claims` (no rule matched),
   * `replayed` (its `jti` was used before), `scope` (more than the rule gives) or `rule_limit`
   * (the rule has its most live tokens).
   */
  reason: string;
  /** The trusted issuer the token named, else null (an untrusted token's text is not repeated). */
  issuer: string | null;
  /** The rule that matched, when the refusal came after matching (`replayed`, `scope`, `rule_limit`). */
  rule: string | null;
  /** That rule's user, when a rule matched. */
  user?: string;
  /** Never set: no token was issued (present so `event.tokenId` reads on every event). */
  tokenId?: undefined;
}

/**
 * A live token was found where it does not belong: in a push (`source: 'push'`, the push was
 * refused) or reported to the revocation endpoint (`source: 'report'`, with where the finder saw
 * it). `revoked` says whether it was revoked. Never carries the token itself.
 * @example
 * createTokenGate({
 *   onEvent: (event) => {
 *     if (event.type === 'token.leaked')
 *       console.warn(`${event.user}'s token "${event.name}" leaked (${event.source}: ${event.path ?? event.url ?? ''})`);
 *   },
 * });
 */
export interface TokenLeakedEvent extends TokenEventBase {
  /** `'token.leaked'`. */
  type: 'token.leaked';
  /** Found in a push through the proxy, or reported by a finder. */
  source: 'push' | 'report';
  /** Whether the token was revoked (push protection may be set to only refuse). */
  revoked: boolean;
  /** `push`: the request path of the push (names the repository). */
  repository?: string;
  /** `push`: the refs the push would have updated. */
  refs?: string[];
  /** `push`: the user who pushed (may differ from the token's owner). */
  pushedBy?: string;
  /** `push`: the file path where known, or `commit <id>` / `tag <id>` / `a changed file`. */
  path?: string;
  /** `report`: where the finder saw the token (as the finder reported it). */
  url?: string;
  /** `report`: the finder's `source` or `type` field (e.g. `content`, `commit`, `gist`). */
  finder?: string;
}

/**
 * The right secret was presented for a token whose stored record was changed outside the
 * library (a direct write to Redis, PostgreSQL or SQLite: its seal is broken), or whose record
 * was never sealed (written before 0.3.0 and not yet sealed with `express-api-tokens seal`).
 * The request got the same 401 as a wrong secret. Never carries a secret.
 * @example
 * createTokenGate({
 *   onEvent: (event) => {
 *     if (event.type === 'token.tampered') console.error(`token ${event.tokenId} record ${event.reason}`);
 *   },
 * });
 */
export interface TokenTamperedEvent extends EventBase {
  /** `'token.tampered'`. */
  type: 'token.tampered';
  /** The token's id. */
  tokenId: string;
  /** The owner the stored record names now: not to be trusted, the record was changed. */
  user: string;
  /** `broken`: the record no longer matches its seal; `unsealed`: it has none. */
  reason: 'broken' | 'unsealed';
}

/**
 * Every event `onEvent` receives; `type` tells them apart. None carries a secret.
 * @example
 * const onEvent = (event: AuditEvent) => {
 *   if (event.type === 'auth.denied') console.warn(JSON.stringify(event));
 *   else console.log(JSON.stringify(event));
 * };
 * createTokenGate({ onEvent });
 */
export type AuditEvent =
  | AuthDeniedEvent
  | AuthSucceededEvent
  | TokenChangedEvent
  | TokenRotatedEvent
  | TokenExpiryEvent
  | UpstreamTokenEvent
  | TokenExchangedEvent
  | TokenExchangeRefusedEvent
  | TokenLeakedEvent
  | TokenTamperedEvent;

/**
 * Receives audit events. Never receives a secret. A listener that throws never breaks a request.
 * @example
 * const onEvent: EventListener = (event) => console.log(JSON.stringify(event));
 * createTokenGate({ onEvent });
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
