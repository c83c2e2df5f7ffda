import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasDuplicateMembers } from '../../lib/request/json-duplicates.js';

const runs = Number(process.env['FUZZ_RUNS'] ?? 200);

describe('hasDuplicateMembers', () => {
  it('finds nothing in what JSON.stringify writes (fast-check)', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        expect(hasDuplicateMembers(text)).toBe(false);
      }),
      { numRuns: runs },
    );
  });

  it('finds a member named twice at any depth, in any escape (fast-check)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), fc.boolean(), (value, name, escaped) => {
        const second = escaped
          ? JSON.stringify(name).replace(/[a-z]/, (c) => `\\u00${c.charCodeAt(0).toString(16)}`)
          : JSON.stringify(name);
        const text = `[{"x":{${JSON.stringify(name)}:1,"y":${JSON.stringify(value)},${second}:2}}]`;
        expect(hasDuplicateMembers(text)).toBe(true);
      }),
      { numRuns: runs },
    );
  });

  it('reads strings holding braces, commas and escaped quotes as strings', () => {
    expect(hasDuplicateMembers('{"a":"{\\"a\\":1,","b":[{"a":1},{"a":2}]}')).toBe(false);
    expect(hasDuplicateMembers('{"a":"}","a":"{"}')).toBe(true);
  });
});
