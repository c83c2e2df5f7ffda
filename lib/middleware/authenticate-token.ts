import type { RequestHandler } from 'express';
import { AuthenticationError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse, refuseOrFail } from '../http/respond.js';
import { takePendingToken } from '../internal/credential-slot.js';
import type { FailureThrottle } from '../internal/failure-throttle.js';
import { parseIp } from '../internal/ip.js';
import { type TokenService, toTokenInfo } from '../tokens/service.js';

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
    const clientIp =
      resolved !== undefined ? resolved : (parseIp(req.socket?.remoteAddress ?? '')?.text ?? null);
    const fail = refuseOrFail(req, res, next, emit);
    const verify = async () => {
      const parsedId = throttle?.assertAllowed(clientIp, pending.token);
      const outcome = await tokens.check(pending.token);
      if (!outcome.ok) {
        if (throttle) await throttle.recordFailure(clientIp, outcome.id ?? parsedId);
        refuse(req, res, invalid(), emit, outcome.id === undefined ? {} : { tokenId: outcome.id });
        return;
      }
      const { record } = outcome;
      const claimed = pending.claimedUser;
      if (
        claimed !== undefined &&
        !ANY_USER.has(claimed.toLowerCase()) &&
        claimed.toLowerCase() !== record.user.toLowerCase()
      ) {
        refuse(
          req,
          res,
          new AuthenticationError(
            'TOKEN_USER_MISMATCH',
            'The user name does not match the API token’s owner.',
          ),
          emit,
          { tokenId: record.id, user: record.user },
        );
        return;
      }
      throttle?.noteSuccess(record.id, pending.token);
      req.auth = {
        kind: 'token',
        user: record.user,
        token: toTokenInfo(record),
        ...(resolved === undefined ? {} : { clientIp }),
      };
      tokens.noteUse(record, clientIp);
      next();
    };
    verify().catch(fail);
  };
}
