import { isIPv4, isIPv6 } from 'node:net';
import { BoundedCache } from '../internal/bounded-cache.js';

/**
 * Client addresses, strictly. `node:net` decides what is an address; on top of it we refuse
 * the spellings our inputs must never carry: zone ids (`fe80::1%eth0`), ports, brackets, and
 * IPv4 forms other than canonical dotted decimal (`node:net` already refuses octal, hex, short
 * and integer forms). IPv4-mapped IPv6 is the IPv4 address it carries.
 */
export interface IpAddress {
  family: 4 | 6;
  /** Canonical text: dotted decimal, or RFC 5952 IPv6 (lower case, longest zero run as `::`). */
  text: string;
}

const MAPPED = /^::ffff:(?:([0-9a-f]{1,4}):([0-9a-f]{1,4})|(\d+\.\d+\.\d+\.\d+))$/;

/** RFC 5952 text of a valid IPv6 address, as the WHATWG URL parser writes it. */
function canonicalV6(text: string): string {
  return new URL(`http://[${text}]`).hostname.slice(1, -1);
}

/** Parses an address strictly (surrounding spaces trimmed), or returns null. */
export function parseIp(input: string): IpAddress | null {
  const text = input.trim();
  if (text.length === 0 || text.length > 45) return null;
  if (isIPv4(text)) return { family: 4, text };
  if (text.includes('%') || !isIPv6(text)) return null;
  const canonical = canonicalV6(text);
  const mapped = MAPPED.exec(canonical);
  if (mapped === null) return { family: 6, text: canonical };
  if (mapped[3] !== undefined) return { family: 4, text: mapped[3] };
  const high = Number.parseInt(mapped[1]!, 16);
  const low = Number.parseInt(mapped[2]!, 16);
  return { family: 4, text: `${high >>> 8}.${high & 255}.${low >>> 8}.${low & 255}` };
}

// The same few addresses (proxies, busy clients) come again and again: remember recent parses.
const recent = new BoundedCache<string, IpAddress | null>(4_096);

/** `parseIp` with a small memo; the result is shared, so callers must not change it. */
export function parseIpCached(input: string): IpAddress | null {
  let address = recent.get(input);
  if (address === undefined) {
    address = parseIp(input);
    recent.set(input, address);
  }
  return address;
}

/** The eight 16-bit groups of a canonical (`parseIp`) IPv6 address, each as four hex digits. */
export function expandV6(text: string): string[] {
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => group.padStart(4, '0'));
}
