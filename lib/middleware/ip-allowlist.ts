import type { RequestHandler } from 'express';
import { parseIpCached } from '../client-address/ip.js';
import { compileIpList } from '../client-address/ip-list.js';
import {
  CLIENT_IP_OPTIONS,
  type ClientIpOptions,
  createClientIpResolver,
} from '../client-address/resolver.js';
import { ForbiddenError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse } from '../http/respond.js';
import { any, boolean, func, validateOptions } from '../internal/options.js';
import { isTokenRequest } from '../request/credential-slot.js';
import { middlewareOf, type Step } from '../request/step.js';

/**
 * Options of `ipAllowlist`, with those of `clientIp` (used when no `clientIp` ran before it).
 * @example
 * const options: IpAllowlistOptions = { allow: ['10.0.0.0/8', '2001:db8::/32'], forPasswords: true };
 * app.use(clientIp(), extractCredentials(), ipAllowlist(options));
 */
export interface IpAllowlistOptions extends ClientIpOptions {
  /** Addresses, CIDR ranges and `first-last` ranges (IPv4 and IPv6) that token requests may come from. */
  allow: readonly string[];
  /** Judge password requests too. Default false: token requests only. Anonymous ones never. */
  forPasswords?: boolean;
  /** Receives an `auth.denied` event for every refusal. Default: none. */
  onEvent?: EventListener;
}

const OPTIONS = { ...CLIENT_IP_OPTIONS, allow: any, forPasswords: boolean, onEvent: func };

/** The one refusal for an address outside a list, whether the gate's or a token's own. */
export function ipNotAllowed(
  address: string | null,
  restriction: 'ipAllowlist' | 'allowedIps' = 'ipAllowlist',
): ForbiddenError {
  return new ForbiddenError(
    'IP_NOT_ALLOWED',
    address === null
      ? 'Your client address could not be determined, so API access is refused.'
      : `API access is not allowed from ${address}.`,
    { restriction },
  );
}

/**
 * Refuses token requests (and, with `forPasswords`, password requests) from addresses outside
 * the allowlist with 403, before the token is looked at, so the answer says nothing about the
 * token. An unknown or unparsable client address is refused, never matched loosely. Uses
 * `req.auth.clientIp` from `clientIp`; alone, it resolves the address itself.
 * @example app.use(ipAllowlist({ allow: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.10-192.0.2.20'] }))
 */
export function ipAllowlist(options: Readonly<IpAllowlistOptions>): RequestHandler {
  return middlewareOf(ipAllowlistStep(options));
}

/** `ipAllowlist` as a step of `protect()`. */
export function ipAllowlistStep(options: Readonly<IpAllowlistOptions>): Step {
  validateOptions<IpAllowlistOptions>(options, OPTIONS);
  const allowed = compileIpList(options.allow, 'ipAllowlist');
  const resolve = createClientIpResolver({
    ...(options.trustedProxies === undefined ? {} : { trustedProxies: options.trustedProxies }),
    ...(options.clientIpHeader === undefined ? {} : { clientIpHeader: options.clientIpHeader }),
  });
  const forPasswords = options.forPasswords ?? false;
  const emit = safeEmitter(options.onEvent);

  return function ipAllowlistStep(req, res, auth, next) {
    const kind = auth.kind;
    const judged = kind === 'token' || isTokenRequest(auth) || (kind === 'password' && forPasswords);
    if (!judged) {
      next();
      return;
    }
    const known = auth.clientIp;
    const address = known === undefined ? resolve(req) : known === null ? null : parseIpCached(known);
    if (address !== null && allowed(address)) {
      next();
      return;
    }
    refuse(req, res, ipNotAllowed(address?.text ?? null), emit);
  };
}
