import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['lib/index.ts', 'lib/testing/index.ts', 'lib/cli/main.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // import.meta.url in the CommonJS build too (optional peers are resolved from the package's own location).
  shims: true,
  // Peer and runtime dependencies stay external: users bring their own express, ioredis, pg,
  // better-sqlite3 and (for the testing entry) vitest.
  external: ['express', 'ioredis', 'jose', 'bcryptjs', 'pg', 'better-sqlite3', 'vitest'],
});
