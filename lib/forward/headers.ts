import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

// Hop-by-hop headers describe one connection and are never forwarded (RFC 9110 §7.6.1).
// `proxy-connection` is not standard, but old clients send it and proxies drop it.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The header names listed in `Connection` (lower-cased): hop-by-hop for this connection too. */
function namedInConnection(value: string | string[] | undefined): Set<string> {
  const names = new Set<string>();
  if (value === undefined) return names;
  for (const line of Array.isArray(value) ? value : [value])
    for (const name of line.split(',')) {
      const trimmed = name.trim().toLowerCase();
      if (trimmed !== '') names.add(trimmed);
    }
  return names;
}

/**
 * A copy of `headers` without the hop-by-hop ones: the standard list, every header the
 * `Connection` header names, and `extra` (names in lower case).
 */
export function endToEndHeaders(
  headers: IncomingHttpHeaders,
  extra: readonly string[] = [],
): OutgoingHttpHeaders {
  const named = namedInConnection(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name) || extra.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

/** `::ffff:192.0.2.1` as `192.0.2.1`, so upstreams read the address the way it was meant. */
export function plainAddress(address: string | undefined): string | undefined {
  return address?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

/** `X-Forwarded-For` the standard way: what earlier hops wrote, then the peer we saw. */
export function appendForwardedFor(
  previous: string | string[] | undefined,
  peer: string | undefined,
): string | undefined {
  const hops = [previous].flat().filter((hop): hop is string => hop !== undefined && hop.trim() !== '');
  if (peer !== undefined) hops.push(peer);
  return hops.length === 0 ? undefined : hops.join(', ');
}
