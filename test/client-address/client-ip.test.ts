import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { clientIp } from '../../lib/middleware/client-ip.js';
import { EXPRESS_VERSIONS, echoApp } from '../support/apps.js';

describe.each(EXPRESS_VERSIONS)('clientIp on %s', (_name, makeApp) => {
  const ipOf = async (options: Parameters<typeof clientIp>[0], headers: Record<string, string> = {}) => {
    const res = await request(echoApp(makeApp, clientIp(options)))
      .get('/')
      .set(headers);
    return res.body.auth.clientIp as string | null;
  };

  it('uses the socket address (IPv4-mapped unmapped) and ignores headers from untrusted peers', async () => {
    expect(await ipOf({}, { 'X-Forwarded-For': '203.0.113.9' })).toBe('127.0.0.1');
    expect(await ipOf({ trustedProxies: ['10.0.0.0/8'] }, { 'X-Forwarded-For': '203.0.113.9' })).toBe(
      '127.0.0.1',
    );
  });

  it('walks X-Forwarded-For right to left past trusted hops', async () => {
    const trusted = { trustedProxies: ['loopback', '10.0.0.0/8'] };
    expect(await ipOf(trusted, { 'X-Forwarded-For': '198.51.100.7, 203.0.113.9, 10.1.1.1' })).toBe(
      '203.0.113.9',
    );
    expect(await ipOf(trusted, { 'X-Forwarded-For': '10.0.0.2, 10.1.1.1' })).toBe('10.0.0.2');
    expect(await ipOf(trusted, { 'X-Forwarded-For': ' ::ffff:203.0.113.9 ' })).toBe('203.0.113.9');
    expect(await ipOf(trusted, { 'X-Forwarded-For': '2001:DB8::1' })).toBe('2001:db8::1');
  });

  it('leaves the address unknown when a trusted proxy sends none or garbage', async () => {
    const trusted = { trustedProxies: ['loopback'] };
    expect(await ipOf(trusted)).toBeNull();
    expect(await ipOf(trusted, { 'X-Forwarded-For': '' })).toBeNull();
    for (const junk of [
      '0x7f.0.0.1',
      '127.1',
      'unknown',
      '203.0.113.9, 010.0.0.1',
      'fe80::1%eth0',
      '1.2.3.4:80',
    ]) {
      expect(await ipOf(trusted, { 'X-Forwarded-For': junk })).toBeNull();
    }
  });

  it('reads X-Real-IP, Forwarded and any named header when configured', async () => {
    expect(
      await ipOf(
        { trustedProxies: ['loopback'], clientIpHeader: 'X-Real-IP' },
        { 'X-Real-IP': '203.0.113.5' },
      ),
    ).toBe('203.0.113.5');
    const forwarded = { trustedProxies: ['loopback'], clientIpHeader: 'forwarded' };
    expect(await ipOf(forwarded, { Forwarded: 'for=192.0.2.60;proto=http;by=203.0.113.43' })).toBe(
      '192.0.2.60',
    );
    expect(await ipOf(forwarded, { Forwarded: 'for="[2001:db8:cafe::17]:4711"' })).toBe('2001:db8:cafe::17');
    expect(await ipOf(forwarded, { Forwarded: 'for=192.0.2.43, for=127.0.0.1' })).toBe('192.0.2.43');
    expect(await ipOf(forwarded, { Forwarded: 'for=unknown' })).toBeNull();
    expect(
      await ipOf(
        { trustedProxies: ['loopback'], clientIpHeader: 'cf-connecting-ip' },
        { 'CF-Connecting-IP': '198.51.100.1' },
      ),
    ).toBe('198.51.100.1');
  });

  it('throws at startup on a bad trusted proxy or header name, naming it', () => {
    expect(() => clientIp({ trustedProxies: ['10.0.0.0/8', 'nope'] })).toThrow('`trustedProxies[1]`');
    expect(() => clientIp({ clientIpHeader: 'bad header' })).toThrow(/`clientIpHeader`/);
  });
});
