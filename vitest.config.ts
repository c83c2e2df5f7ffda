import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: keep parallel files modest so Redis-backed suites stay deterministic.
    maxWorkers: 2,
    globalSetup: ['test/support/global-redis.ts'],
  },
});
