import fc from 'fast-check';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { forwardedForChain, parseForwarded } from '../../lib/client-address/forwarded-header.js';
import { clientIp } from '../../lib/middleware/client-ip.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

const runs = Number(process.env['FUZZ_RUNS'] ?? 300);

describe('parseForwarded (RFC 7239)', () => {
  it.each([
    ['for=192.0.2.43', [['192.0.2.43']]],
    ['for=192.0.2.43, for=198.51.100.17', [['192.0.2.43'], ['198.51.100.17']]],
    ['For="[2001:db8:cafe::17]:4711"', [['2001:db8:cafe::17']]],
    ['for=192.0.2.60;proto=http;by=203.0.113.43', [['192.0.2.60']]],
    ['for="192.0.2.43:47011"', [['192.0.2.43']]],
    ['proto=https;for=192.0.2.7,,for=192.0.2.8', [['192.0.2.7'], ['192.0.2.8']]],
  ])('reads %s', (value, expected) => {
    expect(forwardedForChain(value)).toEqual(expected.map(([a]) => a));
  });

  it.each([
    ['two for= in one element', 'for=192.0.2.1;for=203.0.113.9'],
    ['two for= in one element, other case', 'for=192.0.2.1;FOR=203.0.113.9'],
    ['an unterminated quoted string', 'for="192.0.2.1'],
    ['a bare colon in a token', 'for=192.0.2.1:80'],
    ['a missing value', 'for='],
    ['junk between pairs', 'for=192.0.2.1 junk'],
    ['a space inside a token value', 'for=192.0.2 .1'],
  ])('refuses %s (the client address is then unknown)', (_what, value) => {
    expect(forwardedForChain(value)).toBeNull();
  });

  it('treats quoted strings as opaque: a for= or a comma inside quotes is text', () => {
    expect(parseForwarded('by="x;for=203.0.113.9, for=1.2.3.4";for=192.0.2.1')).toEqual([
      new Map([
        ['by', 'x;for=203.0.113.9, for=1.2.3.4'],
        ['for', '192.0.2.1'],
      ]),
    ]);
    // The quoted host value would be an address if it were read as structure; it is not.
    expect(forwardedForChain('host="a,for=203.0.113.9"')).toEqual([null]);
  });

  it('never throws, and never finds more elements than the value has commas outside quotes', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (value) => {
        const elements = parseForwarded(value);
        if (elements !== null) expect(elements.length).toBeLessThanOrEqual(value.split(',').length);
      }),
      { numRuns: runs },
    );
  });
});

describe('clientIp with Forwarded from a trusted proxy', () => {
  const app = echoApp(
    EXPRESS_VERSIONS[1]![1],
    clientIp({ trustedProxies: ['loopback'], clientIpHeader: 'forwarded' }),
  );
  const ipOf = async (forwarded: string) =>
    (await request(app).get('/').set('Forwarded', forwarded)).body.auth.clientIp;

  it('believes a well-formed element and refuses an ambiguous one', async () => {
    expect(await ipOf('for=192.0.2.43')).toBe('192.0.2.43');
    expect(await ipOf('for="[2001:db8::17]:4711"')).toBe('2001:db8::17');
    expect(await ipOf('for=192.0.2.1;for=203.0.113.9')).toBeNull();
    expect(await ipOf('by="for=203.0.113.9"')).toBeNull();
  });
});
