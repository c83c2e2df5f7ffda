import type { Request } from 'express';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addHeader, removeHeaders, spellingsOf } from '../../lib/request/header-rewrite.js';

/** A request as Node hands it over: the raw lines and the lower-cased object (first line wins). */
function requestWith(lines: Array<[string, string]>): Request {
  const headers: Record<string, string> = {};
  for (const [name, value] of lines) headers[name.toLowerCase()] ??= value;
  return { rawHeaders: lines.flat(), headers } as unknown as Request;
}

describe('spellingsOf', () => {
  const matches = spellingsOf(['X-Forwarded-User', 'authorization', 'x_user']);

  it('matches every letter case and `_` for `-`, in the names given and in the names sent', () => {
    for (const name of [
      'x-forwarded-user',
      'X-FORWARDED-USER',
      'x_Forwarded_uSer',
      'Authorization',
      'X-USER',
      'x_user',
    ])
      expect(matches(name), name).toBe(true);
    for (const name of ['x-forwarded-users', 'x-forwarded-use', 'authorisation', 'x-userx', '', 'x.user'])
      expect(matches(name), name).toBe(false);
  });

  it('agrees with lower-casing and folding `_` on any ASCII name', () => {
    const names = ['x-forwarded-user', 'authorization', 'x-user'];
    const reference = (name: string) => names.includes(name.toLowerCase().replaceAll('_', '-'));
    const matcher = spellingsOf(names);
    const nameChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_09.!~');
    // Respellings of the names themselves (case and `_`), and arbitrary names of any length.
    const respelled = fc
      .tuple(fc.constantFrom(...names), fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }))
      .map(([name, flips]) =>
        [...name].map((c, i) => (flips[i] ? (c === '-' ? '_' : c.toUpperCase()) : c)).join(''),
      );
    fc.assert(
      fc.property(fc.oneof(respelled, fc.string({ unit: nameChar, maxLength: 20 })), (sent) => {
        expect(matcher(sent)).toBe(reference(sent));
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('removeHeaders and addHeader', () => {
  const identity = spellingsOf(['x-forwarded-user', 'authorization']);

  it('drops every spelling from both views of the headers and keeps the rest in order', () => {
    const req = requestWith([
      ['Host', 'example.com'],
      ['Authorization', 'Bearer x'],
      ['X_Forwarded_User', 'admin'],
      ['Accept', '*/*'],
      ['x-forwarded-user', 'root'],
    ]);
    removeHeaders(req, identity);
    expect(req.rawHeaders).toEqual(['Host', 'example.com', 'Accept', '*/*']);
    expect(req.headers).toEqual({ host: 'example.com', accept: '*/*' });
    addHeader(req, 'x-forwarded-user', 'alice');
    expect(req.rawHeaders).toEqual(['Host', 'example.com', 'Accept', '*/*', 'x-forwarded-user', 'alice']);
    expect(req.headers['x-forwarded-user']).toBe('alice');
  });

  it('removes a single header in every letter case it was sent in', () => {
    const req = requestWith([
      ['authorization', 'Bearer a'],
      ['Host', 'h'],
      ['AUTHORIZATION', 'Bearer b'],
    ]);
    removeHeaders(req, identity);
    expect(req.rawHeaders).toEqual(['Host', 'h']);
    expect(req.headers).toEqual({ host: 'h' });
  });

  it('leaves a request without those headers untouched', () => {
    const req = requestWith([['Host', 'h']]);
    const { rawHeaders, headers } = req;
    removeHeaders(req, identity);
    expect(req.rawHeaders).toBe(rawHeaders);
    expect(req.headers).toBe(headers);
    expect(rawHeaders).toEqual(['Host', 'h']);
  });
});
