import type { RequestHandler } from 'express';
import { AuthenticationError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse, refuseOrFail } from '../http/respond.js';
import { sameUser } from '../internal/validate.js';
import { takePendingToken } from '../request/credential-slot.js';
import type { FailureThrottle } from '../request/throttle.js';
import { type TokenService, toTokenInfo, type VerifyOutcome } from '../tokens/service.js';
import { peerAddress } from './client-ip.js';

export interface AuthenticateTokenOptions {
  /** The token service (`gate.tokens`). */
  tokens: TokenService;
  /** Brute-force throttle (built by the gate from its `throttle` option). */
  throttle?: FailureThrottle;
  onEvent?: EventListener;
}

/** Basic user parts that stand for "whoever owns this token". */
const ANY_USER = new Set(['', 'x-token-auth']);

/**
 * Verifies the token `extractCredentials` found. Unknown, revoked, expired and tampered tokens
 * get the very same 401; a store failure is a 503, never a 401. On success `req.auth` becomes
 * `{ kind: 'token', user, token }`.
 * @example app.use(extractCredentials(), authenticateToken({ tokens: gate.tokens }))
 */
export function authenticateToken(options: Readonly<AuthenticateTokenOptions>): RequestHandler {
  if (typeof options?.tokens?.check !== 'function')
    throw new TypeError('`tokens` must be a TokenService (gate.tokens)');
  const { tokens, throttle } = options;
  const emit = safeEmitter(options.onEvent);
  const invalid = () =>
    new AuthenticationError('TOKEN_INVALID', 'The API token is invalid, expired or revoked.');

  return function authenticateTokenMiddleware(req, res, next) {
    const pending = takePendingToken(req);
    if (pending === undefined) {
      next();
      return;
    }
    const resolved = req.auth?.clientIp;
    const clientIp = resolved !== undefined ? resolved : (peerAddress(req)?.text ?? null);
    const accept = (outcome: VerifyOutcome): void | Promise<void> => {
      if (!outcome.ok) {
        refuse(req, res, invalid(), emit, outcome.id === undefined ? {} : { tokenId: outcome.id });
        return throttle?.recordFailure(clientIp, outcome.id);
      }
      const { record } = outcome;
      const claimed = pending.claimedUser;
      if (claimed !== undefined && !ANY_USER.has(claimed.toLowerCase()) && !sameUser(claimed, record.user)) {
        const message = 'The user name does not match the API token’s owner.';
        refuse(req, res, new AuthenticationError('TOKEN_USER_MISMATCH', message), emit, {
          tokenId: record.id,
          user: record.user,
        });
        return;
      }
      throttle?.noteSuccess(record.id, pending.token);
      const token = toTokenInfo(record);
      if (req.auth === undefined) req.auth = { kind: 'token' };
      const auth = req.auth;
      auth.kind = 'token';
      auth.user = record.user;
      auth.token = token;
      tokens.noteUse(record, clientIp);
      next();
    };
    try {
      throttle?.assertAllowed(clientIp, pending.token);
    } catch (err) {
      refuseOrFail(req, res, next, emit)(err);
      return;
    }
    // A cached verification answers at once; only a miss waits for the store.
    const cached = tokens.checkCached(pending.token);
    if (cached !== undefined) {
      void accept(cached);
      return;
    }
    tokens
      .check(pending.token)
      .then(accept)
      .catch(refuseOrFail(req, res, next, emit));
  };
}
