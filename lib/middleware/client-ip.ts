import type { Request, RequestHandler } from 'express';
import { type IpAddress, parseIpCached } from '../internal/ip.js';
import { compileIpList, type IpMatcher } from '../internal/ip-list.js';
import { any, headerName, validateOptions } from '../internal/options.js';
import { forwardedForChain } from '../request/forwarded-header.js';

export interface ClientIpOptions {
  /**
   * Peers whose client-address header is believed: addresses, CIDR ranges, `first-last`
   * ranges, or the names `loopback`, `private`, `uniquelocal`, `linklocal`. Default: none (the
   * socket address is the client).
   */
  trustedProxies?: readonly string[];
  /**
   * Header a trusted proxy puts the client address in: `x-forwarded-for` (default; walked right
   * to left past trusted hops), `forwarded` (RFC 7239), `x-real-ip`, or any other name.
   */
  clientIpHeader?: string;
}

export const CLIENT_IP_OPTIONS = { trustedProxies: any, clientIpHeader: headerName };

/** The socket peer's address, strictly parsed, or null. */
export function peerAddress(req: Request): IpAddress | null {
  return parseIpCached(req.socket?.remoteAddress ?? '');
}

/** A compiled resolver: the client address of a request, or null when it is unknown. */
export type ClientIpResolver = (req: Request) => IpAddress | null;

/** Compiles the options once. Throws at startup on a bad `trustedProxies` entry or header name. */
export function createClientIpResolver(options: Readonly<ClientIpOptions> = {}): ClientIpResolver {
  validateOptions<ClientIpOptions>(options, CLIENT_IP_OPTIONS);
  const trusted: IpMatcher | null =
    options.trustedProxies === undefined || options.trustedProxies.length === 0
      ? null
      : compileIpList(options.trustedProxies, 'trustedProxies');
  const header = (options.clientIpHeader ?? 'x-forwarded-for').toLowerCase();
  const isForwarded = header === 'forwarded';

  return function resolve(req) {
    const peer = peerAddress(req);
    if (peer === null || trusted === null || !trusted(peer)) return peer;
    const raw = req.headers[header];
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    if (value === undefined || value.trim() === '') return null;
    const hops = isForwarded ? forwardedForChain(value) : value.split(',');
    if (hops === null) return null;
    // Right to left: the nearest hop that is not one of our proxies is the client.
    let leftmost: IpAddress | null = null;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i];
      const address = hop === null || hop === undefined ? null : parseIpCached(hop);
      if (address === null) return null;
      if (!trusted(address)) return address;
      leftmost = address;
    }
    return leftmost;
  };
}

/**
 * Resolves the client address into `req.auth.clientIp` (canonical text, or null when unknown),
 * believing the configured header only from `trustedProxies`.
 * @example app.use(clientIp({ trustedProxies: ['10.0.0.0/8'], clientIpHeader: 'x-forwarded-for' }))
 */
export function clientIp(options: Readonly<ClientIpOptions> = {}): RequestHandler {
  const resolve = createClientIpResolver(options);
  return function clientIpMiddleware(req, _res, next) {
    const clientIp = resolve(req)?.text ?? null;
    if (req.auth === undefined) req.auth = { kind: 'anonymous', clientIp };
    else req.auth.clientIp = clientIp;
    next();
  };
}
