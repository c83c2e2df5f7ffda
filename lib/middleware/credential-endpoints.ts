import type { RequestHandler } from 'express';
import { ForbiddenError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse } from '../http/respond.js';
import { func, validateOptions } from '../internal/options.js';
import { isCredentialEndpoint } from '../request/credential-paths.js';
import { middlewareOf, type Step } from '../request/step.js';

/**
 * Options of `refuseCredentialEndpoints`.
 * @example
 * const options: CredentialEndpointsOptions = { onEvent: (event) => console.log(event.type) };
 * app.use(clientIp(), extractCredentials(), authenticateToken({ tokens }), refuseCredentialEndpoints(options));
 */
export interface CredentialEndpointsOptions {
  /** Receives an `auth.denied` event for every refusal. Default: none. */
  onEvent?: EventListener;
}

export const CREDENTIAL_ENDPOINTS_OPTIONS = { onEvent: func };

/**
 * Refuses token requests (403 `CREDENTIAL_ENDPOINT_REFUSED`) to Bitbucket endpoints that create
 * credentials outliving the token: SSH and GPG keys, access keys, HTTP access tokens, OAuth 2.0
 * grants, passwords, in every spelling Bitbucket could route (see `credential-paths.ts`). A
 * revoked token must leave nothing behind. Password and anonymous requests are not judged.
 * `protect()` runs it unless the gate's `allowCredentialEndpoints` is true.
 * @example app.use(clientIp(), extractCredentials(), authenticateToken({ tokens }), refuseCredentialEndpoints())
 */
export function refuseCredentialEndpoints(
  options: Readonly<CredentialEndpointsOptions> = {},
): RequestHandler {
  return middlewareOf(credentialEndpointsStep(options));
}

/** `refuseCredentialEndpoints` as a step of `protect()`. */
export function credentialEndpointsStep(options: Readonly<CredentialEndpointsOptions>): Step {
  validateOptions<CredentialEndpointsOptions>(options, CREDENTIAL_ENDPOINTS_OPTIONS);
  const emit = safeEmitter(options.onEvent);
  return function credentialEndpointsStep(req, res, auth, next) {
    const token = auth.kind === 'token' ? auth.token : undefined;
    if (token === undefined || !isCredentialEndpoint(req.method, req.originalUrl ?? req.url, req.headers)) {
      next();
      return;
    }
    const message =
      'API tokens may not create SSH or GPG keys, access tokens or passwords: they would outlive the token. ' +
      'Use Bitbucket with your password for that.';
    refuse(req, res, new ForbiddenError('CREDENTIAL_ENDPOINT_REFUSED', message), emit, {
      tokenId: token.id,
      user: token.user,
    });
  };
}
