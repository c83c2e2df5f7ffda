import { isIPv6 } from 'node:net';

/**
 * Strict IP handling. Only canonical dotted-decimal IPv4 (no octal, hex, short or integer forms,
 * no leading zeros) and IPv6 without a zone id are addresses; IPv4-mapped IPv6 is treated as
 * the IPv4 address it carries. Anything else is not an address, and is never matched loosely.
 */
export type IpAddress =
  | { family: 4; v4: number; text: string }
  | { family: 6; v6: Uint32Array; text: string };

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseV4(text: string): number | null {
  const match = IPV4.exec(text);
  if (match === null) return null;
  return (
    ((Number(match[1]) << 24) | (Number(match[2]) << 16) | (Number(match[3]) << 8) | Number(match[4])) >>> 0
  );
}

function v4Text(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** Eight 16-bit groups, or null. Accepts `::` once and a dotted IPv4 tail. */
function parseV6Groups(text: string): number[] | null {
  if (text.includes('%') || !isIPv6(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const side = (part: string): number[] | null => {
    if (part === '') return [];
    const groups: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseV4(piece);
        if (v4 === null) return null;
        groups.push(v4 >>> 16, v4 & 0xffff);
      } else if (HEX_GROUP.test(piece)) {
        groups.push(Number.parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  const head = side(halves[0]!);
  const tail = halves.length === 2 ? side(halves[1]!) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 2 && missing < 1) || (halves.length === 1 && missing !== 0)) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/** RFC 5952 text: lowercase, longest run of zero groups (two or more) as `::`. */
function v6Text(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function isMapped(groups: number[]): boolean {
  return groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
}

/** Parses an address strictly (surrounding spaces trimmed), or returns null. */
export function parseIp(input: string): IpAddress | null {
  const text = input.trim();
  if (text.length === 0 || text.length > 45) return null;
  const v4 = parseV4(text);
  if (v4 !== null) return { family: 4, v4, text: v4Text(v4) };
  const groups = parseV6Groups(text);
  if (groups === null) return null;
  if (isMapped(groups)) {
    const mapped = ((groups[6]! << 16) | groups[7]!) >>> 0;
    return { family: 4, v4: mapped, text: v4Text(mapped) };
  }
  const v6 = new Uint32Array(4);
  for (let i = 0; i < 4; i++) v6[i] = ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0;
  return { family: 6, v6, text: v6Text(groups) };
}

// The same few addresses (proxies, busy clients) come again and again: remember recent parses.
const recent = new Map<string, IpAddress | null>();
const RECENT_LIMIT = 4_096;

/** `parseIp` with a small memo; the result is shared, so callers must not change it. */
export function parseIpCached(input: string): IpAddress | null {
  let address = recent.get(input);
  if (address === undefined) {
    address = parseIp(input);
    if (recent.size >= RECENT_LIMIT) recent.clear();
    recent.set(input, address);
  }
  return address;
}

/** The throttle key of an address: IPv4 as is, IPv6 by its /64 (one subscriber's usual share). */
export function addressKey(clientIp: string | null): string {
  const address = clientIp === null ? null : parseIpCached(clientIp);
  if (address === null) return 'ip:unknown';
  if (address.family === 4) return `ip:${address.text}`;
  return `ip6:${address.v6[0]!.toString(16)}:${address.v6[1]!.toString(16)}`;
}

interface V4Rule {
  family: 4;
  base: number;
  mask: number;
}
interface V6Rule {
  family: 6;
  base: Uint32Array;
  mask: Uint32Array;
}
type Rule = V4Rule | V6Rule;

const maskOf = (bits: number) => (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);

const NAMED_RANGES: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
};

/** Parses `addr` or `addr/bits` into a rule, or null. Host bits beyond the prefix are ignored. */
function parseRule(entry: string): Rule | null {
  const [addressText, bitsText, extra] = entry.trim().split('/');
  if (extra !== undefined || addressText === undefined) return null;
  const address = parseIp(addressText);
  if (address === null) return null;
  const wasMappedV6 = address.family === 4 && addressText.includes(':');
  const max = address.family === 4 && !wasMappedV6 ? 32 : 128;
  let bits = max;
  if (bitsText !== undefined) {
    if (!/^(0|[1-9]\d{0,2})$/.test(bitsText)) return null;
    bits = Number(bitsText);
    if (bits > max) return null;
  }
  if (address.family === 4) {
    // A mapped IPv6 range is the IPv4 range it carries; below /96 it covers no mapped address only.
    const v4Bits = wasMappedV6 ? bits - 96 : bits;
    if (v4Bits < 0) return null;
    const mask = maskOf(v4Bits);
    return { family: 4, base: (address.v4 & mask) >>> 0, mask };
  }
  const mask = new Uint32Array(4);
  const base = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    mask[i] = maskOf(Math.max(0, Math.min(32, bits - 32 * i)));
    base[i] = (address.v6[i]! & mask[i]!) >>> 0;
  }
  return { family: 6, base, mask };
}

/** A compiled list of addresses and ranges. */
export type IpMatcher = (address: IpAddress) => boolean;

/**
 * Compiles addresses, CIDR ranges and the names `loopback`, `private`, `linklocal` once.
 * Throws a TypeError naming `option[i]` for an entry that is not one of those.
 */
export function compileIpList(entries: unknown, option: string): IpMatcher {
  const list = typeof entries === 'string' ? entries.split(',').filter((e) => e.trim() !== '') : entries;
  if (!Array.isArray(list))
    throw new TypeError(`\`${option}\` must be an array of IP addresses or CIDR ranges`);
  const v4: V4Rule[] = [];
  const v6: V6Rule[] = [];
  list.forEach((entry, i) => {
    const expanded = typeof entry === 'string' ? (NAMED_RANGES[entry.trim()] ?? [entry]) : [];
    if (expanded.length === 0) {
      throw new TypeError(`\`${option}[${i}]\` must be a string, got ${typeof entry}`);
    }
    for (const text of expanded) {
      const rule = parseRule(text);
      if (rule === null) {
        throw new TypeError(
          `\`${option}[${i}]\` is not an IP address or CIDR range: ${JSON.stringify(entry)}`,
        );
      }
      if (rule.family === 4) v4.push(rule);
      else v6.push(rule);
    }
  });
  return (address) => {
    if (address.family === 4) {
      for (const rule of v4) if ((address.v4 & rule.mask) >>> 0 === rule.base) return true;
      return false;
    }
    for (const rule of v6) {
      const a = address.v6;
      if (
        (a[0]! & rule.mask[0]!) >>> 0 === rule.base[0] &&
        (a[1]! & rule.mask[1]!) >>> 0 === rule.base[1] &&
        (a[2]! & rule.mask[2]!) >>> 0 === rule.base[2] &&
        (a[3]! & rule.mask[3]!) >>> 0 === rule.base[3]
      ) {
        return true;
      }
    }
    return false;
  };
}
