import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: keep parallel files modest so Redis-backed suites stay deterministic.
    maxWorkers: 2,
    // First the programs the selected files need (one line per missing one), then Redis and
    // PostgreSQL: the machine's, or throwaway servers started for this run.
    globalSetup: [
      'test/support/global-preflight.ts',
      'test/support/global-redis.ts',
      'test/support/global-postgres.ts',
    ],
  },
});
