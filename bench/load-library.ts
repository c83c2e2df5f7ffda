import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The library as users get it: the built `dist/` (run `npm run build` first; `npm run bench`
 * does). Benchmarking the TypeScript sources through a loader would measure the loader's
 * transforms (e.g. tsx's keepNames wrappers on every closure), not the library.
 */
export const library: typeof import('../lib/index.js') = await import(
  pathToFileURL(resolve('dist/index.js')).href
);
