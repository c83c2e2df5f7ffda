import { describe, expect, it } from 'vitest';
import { DeltaLiterals } from '../../lib/scanning/delta-literals.js';
import { TokenMatcher } from '../../lib/scanning/token-matcher.js';
import { generateToken } from '../../lib/tokens/format.js';

/** A git delta (gitformat-pack(5), "Deltified representation") from instructions. */
function delta(...instructions: Array<{ insert: string } | { copy: number }>): Buffer {
  const bytes: number[] = [0x10, 0x7f]; // source and target sizes (not checked: nothing is resolved)
  for (const instruction of instructions) {
    if ('insert' in instruction) {
      const data = Buffer.from(instruction.insert, 'latin1');
      for (let at = 0; at < data.length; at += 127) {
        const part = data.subarray(at, at + 127);
        bytes.push(part.length, ...part);
      }
    } else bytes.push(0x80 | 0x01 | 0x10, 0, instruction.copy); // offset byte 0, size byte 1
  }
  return Buffer.from(bytes);
}

function found(data: Buffer, chunk = data.length): string[] {
  const tokens: string[] = [];
  const literals = new DeltaLiterals(new TokenMatcher('bbt', (t) => tokens.push(t)));
  for (let at = 0; at < data.length; at += chunk) literals.write(data.subarray(at, at + chunk));
  literals.end();
  return tokens;
}

describe('DeltaLiterals', () => {
  const { token } = generateToken('bbt');
  const body = token.slice(4);

  it('finds a token inserted whole, split over 127-byte inserts and over chunks', () => {
    const data = delta({ copy: 40 }, { insert: `${'x'.repeat(100)} = ${token}\n` }, { copy: 30 });
    for (const chunk of [1, 5, 64, data.length]) expect(found(data, chunk)).toEqual([token]);
  });

  it('does not join literal data across a copy', () => {
    expect(found(delta({ insert: token.slice(0, 30) }, { copy: 5 }, { insert: token.slice(30) }))).toEqual(
      [],
    );
  });

  it('finds a token whose prefix, and its first character, were copied', () => {
    expect(found(delta({ copy: 20 }, { insert: `${body}\n` }, { copy: 9 }))).toEqual([token]);
    expect(found(delta({ copy: 21 }, { insert: `${body.slice(1)}\n` }, { copy: 9 }))).toEqual([token]);
    expect(found(delta({ copy: 21 }, { insert: body.slice(1) }, { copy: 9 }))).toEqual([token]);
    // Two characters copied as well: not rebuilt (3,844 guesses per such run would be too dear).
    expect(found(delta({ copy: 22 }, { insert: body.slice(2) }, { copy: 9 }))).toEqual([]);
    // The first and the last characters copied: rebuilt (62 guesses, five checksum characters agree).
    expect(found(delta({ copy: 21 }, { insert: body.slice(1, -1) }, { copy: 9 }))).toEqual([token]);
  });

  it('finds a token whose prefix and last characters were both copied (a rotation over the old token)', () => {
    for (const cut of [1, 2, 5])
      expect(found(delta({ copy: 20 }, { insert: body.slice(0, -cut) }, { copy: 9 }))).toEqual([token]);
    // The checksum characters the run holds must agree: one changed, no token.
    const wrong = `${body.slice(0, 55)}${body[55] === 'A' ? 'B' : 'A'}${body.slice(56, -1)}`;
    expect(found(delta({ copy: 20 }, { insert: wrong }, { copy: 9 }))).toEqual([]);
  });

  it('finds a token whose last characters were copied', () => {
    for (const cut of [1, 3, 6])
      expect(found(delta({ insert: `key ${token.slice(0, -cut)}` }, { copy: 12 }))).toEqual([token]);
  });

  it('refuses what is no delta', () => {
    expect(() => found(Buffer.from([0x10, 0x10, 0x00]))).toThrow(/reserved/);
    expect(() => found(Buffer.from([0x10, 0x10, 0x05, 0x41]))).toThrow(/inside an instruction/);
  });
});
