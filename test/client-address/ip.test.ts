import { BlockList } from 'node:net';
import fc from 'fast-check';
import IPCIDR from 'ip-cidr';
import { describe, expect, it } from 'vitest';
import { parseIp } from '../../lib/client-address/ip.js';
import { canonicalIpEntry, compileIpList } from '../../lib/client-address/ip-list.js';

/** The network of `address/bits` (host bits cleared), as lists require. */
const network = (address: string, bits: number) =>
  new IPCIDR(`${parseIp(address)!.text}/${bits}`).start<string>();

const runs = Number(process.env['FUZZ_RUNS'] ?? 500);

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const v6 = fc.ipV6();

describe('parseIp', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    [' 192.0.2.1 ', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:c000:201', '192.0.2.1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::1', '::1'],
    ['::', '::'],
  ])('reads %s as %s', (input, text) => {
    expect(parseIp(input)?.text).toBe(text);
  });

  it.each([
    '010.0.0.1',
    '0x7f.0.0.1',
    '127.1',
    '2130706433',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.2.3.-4',
    'fe80::1%eth0',
    '[::1]',
    '::ffff:010.0.0.1',
    '1::2::3',
    'localhost',
    '',
    '1.2.3.4/8',
    '1.2.3.4:80',
    '١٢٣.1.1.1',
  ])('refuses %j', (input) => {
    expect(parseIp(input)).toBeNull();
  });

  it('refuses every non-canonical spelling of an IPv4 address (octal, hex, short, integer)', () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)),
        fc.nat(3),
        (octets, style) => {
          const n = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
          const spellings = [
            octets.map((o) => `0${o.toString(8)}`).join('.'),
            octets.map((o) => `0x${o.toString(16)}`).join('.'),
            `${octets[0]}.${(n & 0xffffff) >>> 0}`,
            String(n),
          ];
          expect(parseIp(spellings[style]!)).toBeNull();
        },
      ),
      { numRuns: runs },
    );
  });

  it('agrees with node:net on which generated IPv6 addresses are addresses', () => {
    fc.assert(
      fc.property(v6, (address) => {
        expect(parseIp(address)).not.toBeNull();
      }),
      { numRuns: runs },
    );
  });
});

describe('compileIpList', () => {
  it('matches like node:net BlockList on generated IPv4 ranges and addresses, mapped or not', () => {
    fc.assert(
      fc.property(v4, fc.integer({ min: 0, max: 32 }), v4, fc.boolean(), (base, bits, address, mapped) => {
        const list = new BlockList();
        list.addSubnet(base, bits, 'ipv4');
        const ours = compileIpList([`${network(base, bits)}/${bits}`], 'ipAllowlist');
        const probe = parseIp(mapped ? `::ffff:${address}` : address)!;
        expect(ours(probe)).toBe(list.check(address, 'ipv4'));
      }),
      { numRuns: runs },
    );
  });

  it('matches like node:net BlockList on generated IPv6 ranges and addresses', () => {
    fc.assert(
      fc.property(v6, fc.integer({ min: 0, max: 128 }), v6, (base, bits, address) => {
        const parsedBase = parseIp(base)!;
        const parsedAddress = parseIp(address)!;
        // Mapped addresses are IPv4 to us; that case has its own property above.
        fc.pre(parsedBase.family === 6 && parsedAddress.family === 6);
        const list = new BlockList();
        list.addSubnet(base, bits, 'ipv6');
        const ours = compileIpList([`${network(base, bits)}/${bits}`], 'ipAllowlist');
        expect(ours(parsedAddress)).toBe(list.check(address, 'ipv6'));
      }),
      { numRuns: runs },
    );
  });

  it('treats a mapped IPv6 range as the IPv4 range it carries', () => {
    const match = compileIpList(['::ffff:10.0.0.0/104'], 'x');
    expect(match(parseIp('10.200.0.1')!)).toBe(true);
    expect(match(parseIp('11.0.0.1')!)).toBe(false);
  });

  it('knows loopback, private and linklocal by name', () => {
    const match = compileIpList(['loopback', 'private'], 'x');
    for (const a of ['127.0.0.1', '::1', '10.1.1.1', '192.168.1.1', '172.16.0.1', 'fd00::1'])
      expect(match(parseIp(a)!)).toBe(true);
    for (const a of ['8.8.8.8', '2001:db8::1', '169.254.1.1']) expect(match(parseIp(a)!)).toBe(false);
  });

  it.each(['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/08', '10.0.0/8', 'fe80::/129', 'nonsense', '10.0.0.1/8/8'])(
    'throws at startup for %j, naming the entry',
    (entry) => {
      expect(() => compileIpList(['192.0.2.1', entry], 'ipAllowlist')).toThrow(`\`ipAllowlist[1]\``);
    },
  );

  it('refuses a range with host bits set, naming the network it meant', () => {
    expect(() => compileIpList(['10.0.0.7/8'], 'ipAllowlist')).toThrow(/10\.0\.0\.0\/8/);
    expect(() => canonicalIpEntry('2001:db8::1/32')).toThrow('2001:db8::/32');
  });

  it('accepts first-last ranges of one family, in order, and matches them inclusively', () => {
    const match = compileIpList(['10.0.0.1-10.0.0.50', '2001:db8::10-2001:db8::20'], 'x');
    for (const a of ['10.0.0.1', '10.0.0.50', '10.0.0.17', '2001:db8::10', '2001:db8::1a'])
      expect(match(parseIp(a)!)).toBe(true);
    for (const a of ['10.0.0.0', '10.0.0.51', '2001:db8::21', '2001:db8::f'])
      expect(match(parseIp(a)!)).toBe(false);
    expect(() => compileIpList(['10.0.0.50-10.0.0.1'], 'x')).toThrow(/starts after it ends/);
    expect(() => compileIpList(['10.0.0.1-2001:db8::1'], 'x')).toThrow(/mixes/);
    expect(canonicalIpEntry(' 10.0.0.1-10.0.0.50 ')).toBe('10.0.0.1-10.0.0.50');
    expect(canonicalIpEntry('2001:DB8:0::0/32')).toBe('2001:db8::/32');
  });

  it('knows uniquelocal as proxy-addr does', () => {
    const match = compileIpList(['uniquelocal'], 'x');
    expect(match(parseIp('fd12::1')!)).toBe(true);
    expect(match(parseIp('10.9.9.9')!)).toBe(true);
  });

  it('refuses a non-array option', () => {
    expect(() => compileIpList(42, 'trustedProxies')).toThrow(/`trustedProxies`/);
  });
});
