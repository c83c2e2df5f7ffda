import { defineConfig } from 'tsup';

export default defineConfig({
  // One entry per `exports` subpath (and the `bin`, dist/cli.js): dist/<name>.js, .cjs, .d.ts, .d.cts.
  entry: {
    index: 'lib/index.ts',
    'forward/index': 'lib/forward/index.ts',
    'testing/index': 'lib/testing/index.ts',
    cli: 'lib/cli/main.ts',
  },
  format: ['esm', 'cjs'],
  // Shared code goes into chunks for CommonJS too, so every entry sees the same error classes
  // (`instanceof TokenGateError` holds across `express-api-tokens` and its subpaths).
  splitting: true,
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // import.meta.url in the CommonJS build too (optional peers are resolved from the package's own location).
  shims: true,
  // Peer and runtime dependencies stay external: users bring their own express, ioredis, pg,
  // better-sqlite3 and (for the testing entry) vitest.
  external: [
    'express',
    'ioredis',
    'jose',
    'bcryptjs',
    'ip-cidr',
    'pg',
    'better-sqlite3',
    'vitest',
    'openid-client',
    'preact',
    'preact-render-to-string',
  ],
});
