/**
 * `npm run bench:instructions`: instructions per request of each bench server variant (see
 * `bench/server.ts`), counted by valgrind's callgrind, median of three runs, with the ratio to
 * bare Express. Unlike requests per second, the figure does not move with machine load.
 *
 *   npm run bench:instructions                      # every variant
 *   BENCH_VARIANTS=bare,memory npm run bench:instructions
 *   BENCH_DUMPS=/tmp/dumps npm run bench:instructions   # keep dumps for callgrind_annotate
 *   BENCH_REQUESTS=20000 npm run bench:instructions     # requests counted per run (default 10,000)
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedisServer } from '../test/support/redis-server.js';
import { instructionsPerRequest } from './callgrind.js';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const VARIANTS = (process.env['BENCH_VARIANTS'] ?? 'bare,memory,redis,jwt').split(',');
const DUMPS = process.env['BENCH_DUMPS'];
// 2,000 counted requests (the shared script's default) vary by about 3 % between runs; 10,000 by about 1 %.
const REQUESTS = Number(process.env['BENCH_REQUESTS'] ?? 10_000);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function redisUrl(): Promise<{ url: string; stop(): Promise<void> }> {
  const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
    return { url, stop: async () => {} };
  } catch {
    const own = await startRedisServer();
    return { url: own.url, stop: () => own.stop() };
  } finally {
    probe.disconnect();
  }
}

function instructions(variant: string, redis: string, run: number): Promise<number> {
  const server = [
    'node',
    '--import',
    'tsx',
    'bench/server.ts',
    variant,
    ...(variant === 'redis' ? [redis] : []),
  ];
  const keep = DUMPS === undefined ? undefined : join(DUMPS, `${variant}-${run}`);
  if (keep !== undefined) mkdirSync(keep, { recursive: true });
  return instructionsPerRequest(server, {
    requests: REQUESTS,
    ...(keep === undefined ? {} : { keepDumpIn: keep }),
  });
}

const redis = await redisUrl();
try {
  const medians = new Map<string, number>();
  for (const variant of VARIANTS) {
    const counts: number[] = [];
    for (let i = 0; i < RUNS; i++) counts.push(await instructions(variant, redis.url, i));
    medians.set(variant, median(counts));
    console.error(`  ${variant}: ${counts.join(', ')}`);
  }
  const bare = medians.get('bare');
  console.log('| Variant | Instructions per request | bare / variant | Added per request |');
  console.log('| ------- | -----------------------: | -------------: | ----------------: |');
  for (const [variant, count] of medians) {
    const ratio = bare === undefined ? '' : (bare / count).toFixed(3);
    const added = bare === undefined ? '' : (count - bare).toLocaleString('en');
    console.log(`| ${variant} | ${count.toLocaleString('en')} | ${ratio} | ${added} |`);
  }
} finally {
  await redis.stop();
}
