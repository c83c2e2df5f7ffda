import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertTokenPrefix,
  generateToken,
  isTokenId,
  looksLikeToken,
  parseToken,
} from '../../lib/tokens/format.js';

describe('token format', () => {
  it('generates fixed-length tokens of letters, digits and one underscore', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { token, id, secret } = generateToken('bbt');
      expect(token).toMatch(/^bbt_[0-9A-Za-z]{60}$/);
      expect(id).toHaveLength(11);
      expect(secret).toHaveLength(43);
      seen.add(token);
    }
    expect(seen.size).toBe(200);
  });

  it('keeps the hashed material (id + secret) under bcrypt’s 72-byte limit', () => {
    const { id, secret } = generateToken('bbt');
    expect(Buffer.byteLength(id + secret)).toBeLessThan(72);
  });

  it('parses its own tokens back into id and secret', () => {
    const { token, id, secret } = generateToken('acme');
    expect(parseToken(token, 'acme')).toEqual({ id, secret });
  });

  it('refuses a token of another prefix, a truncated one and garbage', () => {
    const { token } = generateToken('bbt');
    expect(parseToken(token, 'acme')).toBeNull();
    expect(parseToken(token.slice(0, -1), 'bbt')).toBeNull();
    expect(parseToken(`${token}x`, 'bbt')).toBeNull();
    expect(parseToken(`bbt_${'!'.repeat(60)}`, 'bbt')).toBeNull();
    expect(parseToken('', 'bbt')).toBeNull();
  });

  it('refuses every single-character change by its checksum', () => {
    const { token } = generateToken('bbt');
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    for (let i = 4; i < token.length; i++) {
      const replacement = alphabet[(alphabet.indexOf(token[i]!) + 17) % 62]!;
      const changed = token.slice(0, i) + replacement + token.slice(i + 1);
      expect(parseToken(changed, 'bbt')).toBeNull();
    }
  });

  it('refuses any single-character change, of any character, at any position', () => {
    const { token } = generateToken('bbt');
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-.~+/=:';
    fc.assert(
      fc.property(fc.nat(token.length - 1), fc.constantFrom(...alphabet), (position, replacement) => {
        fc.pre(token[position] !== replacement);
        const changed = token.slice(0, position) + replacement + token.slice(position + 1);
        expect(parseToken(changed, 'bbt')).toBeNull();
      }),
      { numRuns: Number(process.env['FUZZ_RUNS'] ?? 1_000) },
    );
  });

  it('recognises token-shaped strings by their prefix', () => {
    expect(looksLikeToken('bbt_anything', 'bbt')).toBe(true);
    expect(looksLikeToken('hunter2', 'bbt')).toBe(false);
  });

  it('accepts only well-formed ids', () => {
    expect(isTokenId(generateToken('bbt').id)).toBe(true);
    for (const id of ['', '*', '{abc}', 'a'.repeat(12), '../../etc', 'abc:defghij'])
      expect(isTokenId(id)).toBe(false);
  });

  it('rejects unusable prefixes at startup, naming the option', () => {
    for (const prefix of ['', 'BBT', 'b_t', '1bt', 'a'.repeat(17), 42]) {
      expect(() => assertTokenPrefix(prefix)).toThrow(/`tokenPrefix`/);
    }
  });
});
