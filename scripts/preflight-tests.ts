/**
 * `npm test`'s first step (`pretest`): the programs the whole suite needs, checked before the
 * type check and lint spend a minute, with the same one-line-per-program message as vitest's
 * own preflight (test/support/global-preflight.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingPrograms } from '../test/support/preflight.js';

const sources = readdirSync('test', { recursive: true, encoding: 'utf8' })
  .filter((file) => file.endsWith('.test.ts'))
  .map((file) => readFileSync(join('test', file), 'utf8'));
const lines = await missingPrograms(sources);
if (lines.length > 0) {
  process.stderr.write(`\n${lines.join('\n')}\n\n`);
  process.exit(1);
}
