import type { RequestHandler } from 'express';
import { type ClientIpOptions, createClientIpResolver } from '../client-address/resolver.js';
import { middlewareOf, type Step } from '../request/step.js';

export type { ClientIpOptions } from '../client-address/resolver.js';

/**
 * Resolves the client address into `req.auth.clientIp` (canonical text, or null when unknown),
 * believing the configured header only from `trustedProxies`.
 * @example app.use(clientIp({ trustedProxies: ['10.0.0.0/8'], clientIpHeader: 'x-forwarded-for' }))
 */
export function clientIp(options: Readonly<ClientIpOptions> = {}): RequestHandler {
  return middlewareOf(clientIpStep(options));
}

/** `clientIp` as a step of `protect()`. */
export function clientIpStep(options: Readonly<ClientIpOptions>): Step {
  const resolve = createClientIpResolver(options);
  return function clientIpStep(req, _res, auth, next) {
    auth.clientIp = resolve(req)?.text ?? null;
    next();
  };
}
