// @ts-check
/**
 * `npm run docs`: the API reference from the TSDoc of every package entry point, into docs/api/
 * (build output, not committed). Entry points come from package.json `exports`, so a new
 * subpath is documented without touching this file. Undocumented exports and exports without
 * an `@example` are reported as warnings (scripts/typedoc-plugin.mjs).
 */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

/** `./dist/forward/index.js` → `lib/forward/index.ts`, for every `exports` entry built from lib/. */
const entryPoints = Object.values(pkg.exports)
  .map((target) => (typeof target === 'string' ? target : target.import?.default))
  .filter((file) => typeof file === 'string' && file.startsWith('./dist/') && file.endsWith('.js'))
  .map((file) => `lib/${file.slice('./dist/'.length).replace(/\.js$/, '.ts')}`);

/** @type {Partial<import('typedoc').TypeDocOptions>} */
const config = {
  name: pkg.name,
  entryPoints,
  out: 'docs/api',
  tsconfig: 'tsconfig.lib.json',
  readme: 'none',
  excludePrivate: true,
  excludeInternal: true,
  plugin: ['./scripts/typedoc-plugin.mjs'],
  validation: { notExported: true, invalidLink: true, notDocumented: true },
  // Type machinery behind the exported code unions (`AuthenticationCode` = the 401 codes, …),
  // not names users write.
  intentionallyNotExported: ['CodeOf', 'StatusTable'],
};

export default config;
