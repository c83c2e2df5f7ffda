import type { RequestHandler } from 'express';
import { authOf } from '../request/auth-context.js';
import { type ClientIpOptions, createClientIpResolver } from '../request/client-address.js';

export type { ClientIpOptions } from '../request/client-address.js';

/**
 * Resolves the client address into `req.auth.clientIp` (canonical text, or null when unknown),
 * believing the configured header only from `trustedProxies`.
 * @example app.use(clientIp({ trustedProxies: ['10.0.0.0/8'], clientIpHeader: 'x-forwarded-for' }))
 */
export function clientIp(options: Readonly<ClientIpOptions> = {}): RequestHandler {
  const resolve = createClientIpResolver(options);
  return function clientIpMiddleware(req, _res, next) {
    authOf(req).clientIp = resolve(req)?.text ?? null;
    next();
  };
}
