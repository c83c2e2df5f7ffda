import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { type RedisProcess, redisAnswers, startRedisServer } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let own: RedisProcess | undefined;

/**
 * Finds the Redis the suites share: REDIS_URL, else 127.0.0.1:6379, else a redis-server this
 * run starts on a free port (and stops after). Suites only touch keys under their own prefix.
 */
export async function setup(project: TestProject): Promise<void> {
  const wanted = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  if (await redisAnswers(wanted)) {
    project.provide('redisUrl', wanted);
    return;
  }
  own = await startRedisServer();
  project.provide('redisUrl', own.url);
}

export async function teardown(): Promise<void> {
  await own?.stop();
}
