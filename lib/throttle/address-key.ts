import { expandV6, parseIpCached } from '../client-address/ip.js';

/**
 * The throttle key of an address: IPv4 as is, IPv6 by its /64 (one subscriber's usual share),
 * `unknown` when there is none.
 */
export function addressKey(clientIp: string | null): string {
  const address = clientIp === null ? null : parseIpCached(clientIp);
  if (address === null) return 'ip:unknown';
  if (address.family === 4) return `ip:${address.text}`;
  return `ip6:${expandV6(address.text).slice(0, 4).join(':')}`;
}
