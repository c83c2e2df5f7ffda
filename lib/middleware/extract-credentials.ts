import type { RequestHandler } from 'express';
import { DEFAULT_TOKEN_PREFIX } from '../defaults.js';
import { AuthenticationError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse } from '../http/respond.js';
import { any, func, oneOf, validateOptions } from '../internal/options.js';
import { parseAuthorization } from '../request/authorization-header.js';
import { setPendingToken } from '../request/credential-slot.js';
import { middlewareOf, type Step } from '../request/step.js';
import { assertTokenPrefix } from '../tokens/format.js';

/**
 * Options of `extractCredentials`.
 * @example
 * const options: ExtractCredentialsOptions = { tokenPrefix: 'acme', anonymous: 'deny' };
 * app.use(extractCredentials(options));
 */
export interface ExtractCredentialsOptions {
  /** Prefix of this gate's tokens. Default `'bbt'`. */
  tokenPrefix?: string;
  /** Requests without credentials: `'pass'` (default; the upstream decides) or `'deny'` (401). */
  anonymous?: 'pass' | 'deny';
  /** Receives an `auth.denied` event for every refusal. Default: none. */
  onEvent?: EventListener;
}

/**
 * Reads the request's credentials into `req.auth`: a token to verify (left for
 * `authenticateToken`, off the request object), a password (`kind: 'password'`), or nothing.
 * @example app.use(extractCredentials({ anonymous: 'deny' }))
 */
export function extractCredentials(options: Readonly<ExtractCredentialsOptions> = {}): RequestHandler {
  return middlewareOf(extractCredentialsStep(options));
}

/** `extractCredentials` as a step of `protect()`. */
export function extractCredentialsStep(options: Readonly<ExtractCredentialsOptions>): Step {
  validateOptions<ExtractCredentialsOptions>(options, {
    tokenPrefix: any,
    anonymous: oneOf(['pass', 'deny']),
    onEvent: func,
  });
  const prefix = options.tokenPrefix ?? DEFAULT_TOKEN_PREFIX;
  assertTokenPrefix(prefix);
  const anonymous = options.anonymous ?? 'pass';
  const emit = safeEmitter(options.onEvent);

  return function extractCredentialsStep(req, res, auth, next) {
    // Keeps what `clientIp` resolved; without it, later steps resolve the socket address themselves.
    auth.kind = 'anonymous';
    const credentials = parseAuthorization(req, prefix);
    switch (credentials.kind) {
      case 'invalid':
        refuse(req, res, credentials.error, emit);
        return;
      case 'none':
        if (anonymous === 'deny') {
          const error = new AuthenticationError('CREDENTIALS_MISSING', 'Authenticate with an API token.');
          refuse(req, res, error, emit);
          return;
        }
        break;
      case 'password':
        auth.kind = 'password';
        auth.user = credentials.user;
        break;
      case 'token':
        // Not a token request until verified: `anonymous`, with the token parked aside.
        setPendingToken(auth, credentials);
        break;
    }
    next();
  };
}
