import type { Request, RequestHandler } from 'express';
import { compileIpList, type IpAddress, type IpMatcher, parseIpCached } from '../internal/ip.js';

export interface ClientIpOptions {
  /**
   * Peers whose client-address header is believed: addresses, CIDR ranges, or the names
   * `loopback`, `private`, `linklocal`. Default: none (the socket address is the client).
   */
  trustedProxies?: readonly string[];
  /**
   * Header a trusted proxy puts the client address in: `x-forwarded-for` (default; walked right
   * to left past trusted hops), `forwarded` (RFC 7239), `x-real-ip`, or any other name.
   */
  clientIpHeader?: string;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Pulls the address out of one RFC 7239 `for=` value: quotes, brackets and ports removed. */
function forwardedFor(element: string): string | null {
  for (const pair of element.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
    let value = pair.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    const bracketed = /^\[([^\]]+)\](:\d{1,5})?$/.exec(value);
    if (bracketed) return bracketed[1]!;
    const v4WithPort = /^([\d.]+):\d{1,5}$/.exec(value);
    return v4WithPort ? v4WithPort[1]! : value;
  }
  return null;
}

/** The socket peer's address, strictly parsed, or null. */
export function peerAddress(req: Request): IpAddress | null {
  return parseIpCached(req.socket?.remoteAddress ?? '');
}

/** A compiled resolver: the client address of a request, or null when it is unknown. */
export type ClientIpResolver = (req: Request) => IpAddress | null;

/** Compiles the options once. Throws at startup on a bad `trustedProxies` entry or header name. */
export function createClientIpResolver(options: Readonly<ClientIpOptions> = {}): ClientIpResolver {
  const trusted: IpMatcher | null =
    options.trustedProxies === undefined || options.trustedProxies.length === 0
      ? null
      : compileIpList(options.trustedProxies, 'trustedProxies');
  const header = (options.clientIpHeader ?? 'x-forwarded-for').toLowerCase();
  if (!HEADER_NAME.test(header))
    throw new TypeError(`\`clientIpHeader\` is not a header name: ${JSON.stringify(header)}`);
  const isForwarded = header === 'forwarded';

  return function resolve(req) {
    const peer = peerAddress(req);
    if (peer === null || trusted === null || !trusted(peer)) return peer;
    const raw = req.headers[header];
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    if (value === undefined || value.trim() === '') return null;
    // Right to left: the nearest hop that is not one of our proxies is the client.
    const hops = value.split(',');
    let leftmost: IpAddress | null = null;
    for (let i = hops.length - 1; i >= 0; i--) {
      const text = isForwarded ? forwardedFor(hops[i]!) : hops[i]!;
      const address = text === null ? null : parseIpCached(text);
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
