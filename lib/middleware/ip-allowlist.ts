import type { RequestHandler } from 'express';
import { ForbiddenError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse } from '../http/respond.js';
import { compileIpList, parseIpCached } from '../internal/ip.js';
import { isTokenRequest } from '../request/credential-slot.js';
import { type ClientIpOptions, createClientIpResolver } from './client-ip.js';

export interface IpAllowlistOptions extends ClientIpOptions {
  /** Addresses and CIDR ranges (IPv4 and IPv6) that token requests may come from. */
  allow: readonly string[];
  /** Judge password requests too. Default false: token requests only. Anonymous ones never. */
  forPasswords?: boolean;
  onEvent?: EventListener;
}

/**
 * Refuses token requests (and, with `forPasswords`, password requests) from addresses outside
 * the allowlist with 403. An unknown or unparsable client address is refused, never matched
 * loosely. Uses `req.auth.clientIp` from `clientIp`; alone, it resolves the address itself.
 * @example app.use(ipAllowlist({ allow: ['10.0.0.0/8', '2001:db8::/32'] }))
 */
export function ipAllowlist(options: Readonly<IpAllowlistOptions>): RequestHandler {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('`ipAllowlist` needs options with `allow`');
  const allowed = compileIpList(options.allow, 'ipAllowlist');
  const resolve = createClientIpResolver(options);
  const forPasswords = options.forPasswords ?? false;
  const emit = safeEmitter(options.onEvent);

  return function ipAllowlistMiddleware(req, res, next) {
    const kind = req.auth?.kind ?? 'anonymous';
    const judged = kind === 'token' || isTokenRequest(req) || (kind === 'password' && forPasswords);
    if (!judged) {
      next();
      return;
    }
    const known = req.auth?.clientIp;
    const address = known === undefined ? resolve(req) : known === null ? null : parseIpCached(known);
    if (address !== null && allowed(address)) {
      next();
      return;
    }
    refuse(
      req,
      res,
      new ForbiddenError(
        'IP_NOT_ALLOWED',
        address === null
          ? 'Your client address could not be determined, so API access is refused.'
          : `API access is not allowed from ${address.text}.`,
      ),
      emit,
      req.auth?.token ? { tokenId: req.auth.token.id } : {},
    );
  };
}
