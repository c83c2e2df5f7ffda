import type { Request } from 'express';
import { any, headerName, validateOptions } from '../internal/options.js';
import { forwardedForChain } from './forwarded-header.js';
import { type IpAddress, parseIpCached } from './ip.js';
import { compileIpList, type IpMatcher } from './ip-list.js';

/**
 * The client address of a request: the socket peer, or, from a trusted proxy, the address its
 * header names (X-Forwarded-For walked right to left, RFC 7239 Forwarded, X-Real-IP, …).
 * This is the library's one trust model, used by `protect()`, `clientIp`, `ipAllowlist`, the
 * login throttles and the pages. Like proxy-addr (what Express's `trust proxy` runs), it walks
 * the hops right to left and stops at the first untrusted one; unlike it, it reads its own
 * `trustedProxies` rather than the app's setting (a gate behaves the same in any app), also
 * reads `Forwarded` and single-address headers, and makes the address unknown at a malformed
 * hop instead of returning the hop. Set both to the same proxies when the app uses `req.ip`.
 */

/**
 * Where the client address comes from (`clientIp`, `ipAllowlist`, `bitbucketLogin`, the gate's
 * `trustedProxies` and `clientIpHeader`).
 * @example
 * const options: ClientIpOptions = { trustedProxies: ['10.0.0.5', 'loopback'], clientIpHeader: 'forwarded' };
 * app.use(clientIp(options));
 */
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
