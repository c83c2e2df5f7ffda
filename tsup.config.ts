import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['lib/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // Peer and runtime dependencies stay external: users bring their own express and ioredis.
  external: ['express', 'ioredis', 'jose', 'bcryptjs', 'openid-client', 'preact', 'preact-render-to-string'],
});
