import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { assembleToken, generateToken } from '../../lib/tokens/format.js';

/**
 * docs/secret-scanning.md publishes the token pattern and checksum for other scanners. These
 * tests read the doc itself and check what it says against tokens the library generates: the
 * checksum is implemented here again from the doc's words (a CRC-32 of our own, not zlib's).
 */
const doc = readFileSync('docs/secret-scanning.md', 'utf8');
const block = (language: string, containing: string) => {
  const found = [...doc.matchAll(new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``, 'g'))]
    .map((m) => m[1]!)
    .find((text) => text.includes(containing));
  if (found === undefined) throw new Error(`no ${language} block with ${containing} in the doc`);
  return found;
};

const ALPHABET = /alphabet\s+`([0-9A-Za-z]{62})`/.exec(doc)![1]!;
/** CRC-32 as the doc describes it: reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF. */
const TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
function checksumAsDocumented(token: string): boolean {
  let value = crc32(Buffer.from(token.slice(0, -6), 'ascii'));
  let digits = '';
  for (let i = 0; i < 6; i++) {
    digits = ALPHABET[value % 62] + digits;
    value = Math.floor(value / 62);
  }
  return digits === token.slice(-6);
}
const broken = (token: string) => `${token.slice(0, -1)}${token.at(-1) === 'a' ? 'b' : 'a'}`;

describe('the published token patterns', () => {
  const tokens = Array.from({ length: 2_000 }, () => generateToken('bbt').token);
  const regex = new RegExp(`^${/### Regular expression\n\n```\n(.+)\n```/.exec(doc)![1]!}$`);

  it('the regular expression matches every generated token', () => {
    for (const token of tokens) expect(token).toMatch(regex);
    expect(`${tokens[0]}x`).not.toMatch(regex);
  });

  it('the checksum, implemented from the description, accepts real tokens and refuses altered ones', () => {
    for (const token of tokens) expect(checksumAsDocumented(token)).toBe(true);
    for (const token of tokens.slice(0, 200)) expect(checksumAsDocumented(broken(token))).toBe(false);
    // A leading zero digit of the checksum is padding, as the doc says.
    const padded = Array.from({ length: 20_000 }, () => generateToken('bbt').token).find(
      (t) => t.at(-6) === '0',
    );
    expect(padded !== undefined && checksumAsDocumented(padded)).toBe(true);
    expect(checksumAsDocumented(assembleToken('bbt', 'A'.repeat(11), 'b'.repeat(43)))).toBe(true);
  });

  it("the doc's Python check agrees on real and altered tokens", () => {
    const sample = tokens.slice(0, 50);
    const program = `${block('python', 'def is_token')}
import sys
for line in sys.stdin.read().split():
    print("yes" if is_token(line) else "no")
`;
    const input = [...sample, ...sample.map(broken), 'bbt_short'].join('\n');
    const out = execFileSync('python3', ['-c', program], { input }).toString().trim().split('\n');
    expect(out).toEqual([...sample.map(() => 'yes'), ...sample.map(() => 'no'), 'no']);
  });

  it('the gitleaks rule and the trufflehog detector find the tokens in text', () => {
    const gitleaks = block('toml', '[[rules]]');
    const gitleaksRegex = /regex = '''(.+)'''/.exec(gitleaks)![1]!;
    expect(gitleaks).toMatch(/keywords = \["bbt_"\]/);
    const trufflehog = parseYaml(block('yaml', 'detectors:')) as {
      detectors: Array<{ keywords: string[]; regex: Record<string, string> }>;
    };
    const detector = trufflehog.detectors[0]!;
    expect(detector.keywords).toEqual(['bbt_']);
    const text = `config:\n  token: "${tokens[0]}"\nurl=https://x/?t=${tokens[1]}&a=1\nxbbt_${'a'.repeat(60)}b\n`;
    for (const source of [gitleaksRegex, detector.regex['token']!]) {
      // Both tools use Go's RE2; this pattern means the same in JavaScript.
      const found = [...text.matchAll(new RegExp(source, 'g'))].map((m) => m[1]);
      expect(found).toEqual([tokens[0], tokens[1]]);
    }
  });
});
