import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { peerAddress } from '../client-address/resolver.js';
import { AuthenticationError, TooManyAttemptsError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse, refuseOrFail } from '../http/respond.js';
import { any, boolean, func, validateOptions, withMethods } from '../internal/options.js';
import type { AuthContext } from '../request/auth-context.js';
import { setVerified, takePendingToken } from '../request/credential-slot.js';
import { middlewareOf, type Step } from '../request/step.js';
import {
  FailureThrottle,
  THROTTLE_OPTIONS,
  type ThrottleOptions,
  type Ticket,
} from '../throttle/failure-throttle.js';
import { parseToken } from '../tokens/format.js';
import { type TokenService, verifierOf } from '../tokens/service.js';
import type { VerifyOutcome } from '../tokens/verifier.js';
import { foldName, followsNamingRule, sameUser } from '../validate.js';

/**
 * Options of `authenticateToken`.
 * @example
 * const options: AuthenticateTokenOptions = { tokens: gate.tokens, throttle: { maxFailuresPerIp: 20 } };
 * app.use(clientIp(), extractCredentials(), authenticateToken(options));
 */
export interface AuthenticateTokenOptions {
  /** The token service (`gate.tokens`). */
  tokens: TokenService;
  /** Brute-force throttling of failed attempts, or `false` to switch it off. Default on. */
  throttle?: ThrottleOptions | false;
  /**
   * Record the token's use as soon as it verifies. Default true. `gate.protect()` sets it
   * false and records a use only when every later check let the request through.
   */
  recordUse?: boolean;
  /** Receives an `auth.denied` event for every refusal. Default: none. */
  onEvent?: EventListener;
}

/** Basic user parts that stand for "whoever owns this token" (`oauth2`: what OAuth credential helpers send). */
const ANY_USER = new Set(['', 'x-token-auth', 'oauth2']);

const invalid = () =>
  new AuthenticationError('TOKEN_INVALID', 'The API token is invalid, expired or revoked.');

/**
 * Verifies the token `extractCredentials` found. Unknown, revoked, expired and tampered tokens
 * get the very same 401; a store failure is a 503, never a 401. On success `req.auth` becomes
 * `{ kind: 'token', user, token }`.
 * @example app.use(extractCredentials(), authenticateToken({ tokens: gate.tokens }))
 */
export function authenticateToken(options: Readonly<AuthenticateTokenOptions>): RequestHandler {
  return middlewareOf(authenticateTokenStep(options));
}

/** `authenticateToken` as a step of `protect()`. */
export function authenticateTokenStep(options: Readonly<AuthenticateTokenOptions>): Step {
  validateOptions<AuthenticateTokenOptions>(options, {
    tokens: withMethods(['verify', 'create'], 'a TokenService (gate.tokens)'),
    throttle: any,
    recordUse: boolean,
    onEvent: func,
  });
  const { tokens } = options;
  const verifier = verifierOf(tokens);
  if (options.throttle !== undefined && options.throttle !== false)
    validateOptions<ThrottleOptions>(options.throttle, THROTTLE_OPTIONS, 'throttle');
  const throttle =
    options.throttle === false
      ? undefined
      : new FailureThrottle(verifier.store, options.throttle ?? {}, verifier.stats.throttleBlocks);
  const recordUse = options.recordUse ?? true;
  const emit = safeEmitter(options.onEvent);

  const decide = (
    req: Request,
    res: Response,
    auth: AuthContext,
    next: NextFunction,
    outcome: VerifyOutcome,
    claimedUser: string | undefined,
    ticket: Ticket | undefined,
    clientIp: string | null,
  ): void => {
    ticket?.done(!outcome.ok);
    if (!outcome.ok) {
      const known = outcome.id === undefined ? {} : { tokenId: outcome.id };
      const error =
        ticket !== undefined && (ticket.over || outcome.reason === 'throttled')
          ? new TooManyAttemptsError(ticket.retryAfter)
          : invalid();
      refuse(req, res, error, emit, known);
      return;
    }
    const { record } = outcome;
    // A token stored before the naming rule for a name it now refuses (`\u212Aate`) would
    // still speak for that name upstream, where it may fold into someone else's: refused.
    if (!followsNamingRule(record.user)) {
      refuse(req, res, invalid(), emit, { tokenId: record.id });
      return;
    }
    if (
      claimedUser !== undefined &&
      !ANY_USER.has(foldName(claimedUser)) &&
      !sameUser(claimedUser, record.user)
    ) {
      const message = 'The user name does not match the API token’s owner.';
      refuse(req, res, new AuthenticationError('TOKEN_USER_MISMATCH', message), emit, {
        tokenId: record.id,
        user: record.user,
      });
      return;
    }
    auth.kind = 'token';
    auth.user = record.user;
    auth.token = outcome.info;
    setVerified(auth, outcome);
    if (recordUse) verifier.noteUse(record, clientIp);
    next();
  };

  return function authenticateTokenStep(req, res, auth, next) {
    const pending = takePendingToken(auth);
    if (pending === undefined) {
      next();
      return;
    }
    const resolved = auth.clientIp;
    const clientIp = resolved !== undefined ? resolved : (peerAddress(req)?.text ?? null);
    const { token, claimedUser } = pending;
    // A cached verification answers at once, whatever the client's failures.
    const cached = verifier.checkCached(token);
    if (cached !== undefined) {
      decide(req, res, auth, next, cached, claimedUser, undefined, clientIp);
      return;
    }
    lookUp(req, res, auth, next, token, claimedUser, clientIp);
  };

  // Apart from the step: its closures would make every request, cached or not, allocate their context.
  function lookUp(
    req: Request,
    res: Response,
    auth: AuthContext,
    next: NextFunction,
    token: string,
    claimedUser: string | undefined,
    clientIp: string | null,
  ): void {
    // Malformed and tampered tokens cost no lookup and no throttle bookkeeping.
    const parsed = parseToken(token, tokens.tokenPrefix);
    if (parsed === null) {
      refuse(req, res, invalid(), emit);
      return;
    }
    const fail = refuseOrFail(req, res, next, emit);
    const verify = (ticket: Ticket | undefined) =>
      verifier
        .check(token, ticket === undefined ? undefined : { client: ticket.client, slowWork: !ticket.over })
        .then(
          (outcome) => decide(req, res, auth, next, outcome, claimedUser, ticket, clientIp),
          (err: unknown) => {
            ticket?.done(false);
            fail(err);
          },
        );
    if (throttle === undefined) {
      void verify(undefined);
      return;
    }
    let admitted: Ticket | Promise<Ticket>;
    try {
      admitted = throttle.admit(clientIp, parsed.id);
    } catch (err) {
      refuseOrFail(req, res, next, emit)(err);
      return;
    }
    if ('then' in admitted) admitted.then(verify, fail);
    else void verify(admitted);
  }
}
