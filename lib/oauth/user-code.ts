import { randomInt } from 'node:crypto';

/** Consonants only: no vowels (no words), none easily confused (RFC 8628 §6.1). 20^8 ≈ 2.6e10 codes. */
const ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';

/** A new user code, 8 characters, shown as `XXXX-XXXX`. */
export function newUserCode(): string {
  let code = '';
  for (let i = 0; i < 8; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return code;
}

export const formatUserCode = (code: string) => `${code.slice(0, 4)}-${code.slice(4)}`;

/** What a person typed, as stored: upper case, without dashes and spaces; null when it cannot be a code. */
export function normalizeUserCode(typed: string | undefined): string | null {
  const code = (typed ?? '').toUpperCase().replace(/[\s-]/g, '');
  return code.length === 8 && [...code].every((c) => ALPHABET.includes(c)) ? code : null;
}
