import { BlockList } from 'node:net';
import IPCIDR from 'ip-cidr';
import { BoundedCache } from '../internal/bounded-cache.js';
import { expandV6, type IpAddress, parseIp } from './ip.js';

/**
 * Lists of addresses and ranges (allowlists, trusted proxies, a token's `allowedIps`): parsed
 * strictly once, matched by `node:net`'s BlockList, with recent answers remembered so the hot
 * path costs one Map lookup.
 */

/** Names accepted in lists, as proxy-addr names them. */
const NAMED_RANGES: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
};

type Rule =
  | { kind: 'address'; address: IpAddress }
  | { kind: 'subnet'; network: IpAddress; bits: number }
  | { kind: 'range'; first: IpAddress; last: IpAddress };

/** An entry that is not an address, a CIDR range or a `first-last` range; the message says why. */
class EntryError extends Error {}

function address(text: string): IpAddress {
  const parsed = parseIp(text);
  if (parsed === null) throw new EntryError(`${JSON.stringify(text)} is not an IP address`);
  return parsed;
}

function numeric(value: IpAddress): bigint {
  if (value.family === 4) return value.text.split('.').reduce((n, octet) => (n << 8n) | BigInt(octet), 0n);
  return expandV6(value.text).reduce((n, group) => (n << 16n) | BigInt(`0x${group}`), 0n);
}

function parseSubnet(addressText: string, bitsText: string): Rule {
  const parsed = address(addressText);
  if (!/^(0|[1-9]\d{0,2})$/.test(bitsText)) throw new EntryError(`/${bitsText} is not a prefix length`);
  // A mapped IPv6 range is the IPv4 range it carries; below /96 it would cover more than mapped addresses.
  const mapped = parsed.family === 4 && addressText.includes(':');
  const bits = Number(bitsText) - (mapped ? 96 : 0);
  const max = parsed.family === 4 ? 32 : 128;
  if (bits < 0 || bits > max) throw new EntryError(`/${bitsText} is not a prefix length for this address`);
  const cidr = new IPCIDR(`${parsed.text}/${bits}`);
  const network = address(cidr.start<string>());
  if (network.text !== parsed.text) {
    throw new EntryError(`${parsed.text}/${bits} has host bits set; the network is ${network.text}/${bits}`);
  }
  return { kind: 'subnet', network, bits };
}

function parseRule(entry: string): Rule {
  const text = entry.trim();
  const slash = text.split('/');
  if (slash.length === 2) return parseSubnet(slash[0]!, slash[1]!);
  if (slash.length > 2) throw new EntryError('has more than one /');
  const dash = text.indexOf('-');
  if (dash < 0) return { kind: 'address', address: address(text) };
  const first = address(text.slice(0, dash));
  const last = address(text.slice(dash + 1));
  if (first.family !== last.family) throw new EntryError('mixes an IPv4 and an IPv6 address in one range');
  if (numeric(first) > numeric(last)) throw new EntryError('starts after it ends');
  return { kind: 'range', first, last };
}

function textOf(rule: Rule): string {
  if (rule.kind === 'address') return rule.address.text;
  if (rule.kind === 'subnet') return `${rule.network.text}/${rule.bits}`;
  return `${rule.first.text}-${rule.last.text}`;
}

const family = (value: IpAddress) => (value.family === 4 ? 'ipv4' : 'ipv6');

/**
 * The canonical text of one list entry (`10.0.0.0/8`, `2001:db8::/32`, `10.0.0.1-10.0.0.50`),
 * or an Error whose message says what is wrong with it. Named ranges are not entries.
 */
export function canonicalIpEntry(entry: string): string {
  try {
    return textOf(parseRule(entry));
  } catch (err) {
    if (err instanceof EntryError) throw new Error(err.message);
    throw new Error(`${JSON.stringify(entry)} is not an IP address, CIDR range or first-last range`);
  }
}

/** A compiled list: does it admit this (strictly parsed) address? */
export type IpMatcher = (address: IpAddress) => boolean;

/**
 * Compiles addresses, CIDR ranges, `first-last` ranges and the names `loopback`, `private`,
 * `uniquelocal`, `linklocal` once. Throws a TypeError naming `option[i]` for a bad entry.
 */
export function compileIpList(entries: unknown, option: string): IpMatcher {
  const list = typeof entries === 'string' ? entries.split(',').filter((e) => e.trim() !== '') : entries;
  if (!Array.isArray(list)) throw new TypeError(`\`${option}\` must be an array of IP addresses or ranges`);
  const blocks = new BlockList();
  list.forEach((entry: unknown, i) => {
    if (typeof entry !== 'string')
      throw new TypeError(`\`${option}[${i}]\` must be a string, got ${typeof entry}`);
    for (const text of NAMED_RANGES[entry.trim()] ?? [entry]) {
      let rule: Rule;
      try {
        rule = parseRule(text);
      } catch (err) {
        const why = err instanceof EntryError ? `: ${err.message}` : '';
        throw new TypeError(
          `\`${option}[${i}]\` is not an IP address, CIDR range or first-last range: ${JSON.stringify(entry)}${why}`,
        );
      }
      if (rule.kind === 'address') blocks.addAddress(rule.address.text, family(rule.address));
      else if (rule.kind === 'subnet') blocks.addSubnet(rule.network.text, rule.bits, family(rule.network));
      else blocks.addRange(rule.first.text, rule.last.text, family(rule.first));
    }
  });
  const answers = new BoundedCache<string, boolean>(4_096);
  return (address) => {
    let allowed = answers.get(address.text);
    if (allowed === undefined) {
      allowed = blocks.check(address.text, family(address));
      answers.set(address.text, allowed);
    }
    return allowed;
  };
}
