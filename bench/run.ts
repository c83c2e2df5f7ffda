/**
 * `npm run bench`: what protect() costs against a bare Express app, measured in one run.
 * Throughput runs alternate bare and protected (A B A B …) and report the median ratio; the load
 * generator (autocannon) runs in this process, the servers in a child process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import type { TokenHasher, TokenRecord, TokenService as TokenServiceType, TokenStore } from '../lib/index.js';
// Test data only: token strings for records the bench writes straight into a store.
import { assembleToken, generateToken } from '../lib/tokens/format.js';
import { countCalls } from '../test/support/count-calls.js';
import { startRedisServer } from '../test/support/redis-server.js';
import { loopDelayDuringBcrypt } from './event-loop.js';
import { library } from './load-library.js';

const UNRESTRICTED = {
  allowedIps: null,
  requiredHeaders: null,
  resources: null,
  rateLimit: null,
  upstream: null,
} as const;

const { MemoryTokenStore, RedisTokenStore, TokenService, bcryptHasher, sha256Hasher } = library;
type RedisTokenStore = InstanceType<typeof RedisTokenStore>;
type TokenService = TokenServiceType;

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const rows: string[][] = [];
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const fmt = (n: number, digits = 2) => n.toFixed(digits);
const row = (...cells: string[]) => {
  rows.push(cells);
  console.error(`  ${cells.join(' | ')}`);
};

async function startServer(
  variant: string,
  redisUrl?: string,
): Promise<{ port: number; token: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/server.ts', variant, ...(redisUrl ? [redisUrl] : [])],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const ready = /READY (\d+) (\S+)/.exec(out);
      if (ready) resolve(ready[0]);
    });
    child.once('exit', () => reject(new Error(`bench server ${variant} exited`)));
  });
  const [, port, token] = line.split(' ');
  return { port: Number(port), token: token!, child };
}

interface Load {
  rps: number;
  /** Server CPU time per request, in µs (user + system), read from the server itself. */
  cpuPerRequest: number;
}

async function serverCpu(port: number): Promise<{ cpuMicros: number; served: number }> {
  return (await (await fetch(`http://127.0.0.1:${port}/__cpu`)).json()) as {
    cpuMicros: number;
    served: number;
  };
}

async function throughput(port: number, token: string | undefined): Promise<Load> {
  const before = await serverCpu(port);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/rest/api/1.0/projects`,
    connections: 16,
    duration: SECONDS,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`bench: ${result.non2xx} non-2xx, ${result.errors} errors`);
  const after = await serverCpu(port);
  return {
    rps: result.requests.average,
    cpuPerRequest: (after.cpuMicros - before.cpuMicros) / (after.served - before.served),
  };
}

async function throughputRatios(redisUrl: string): Promise<void> {
  const bare = await startServer('bare');
  try {
    for (const [label, variant] of [
      ['protect(), memory store', 'memory'],
      ['protect(), Redis store', 'redis'],
      ['protect(), bcrypt hasher (warm cache)', 'bcrypt'],
    ] as const) {
      const gated = await startServer(variant, redisUrl);
      try {
        await throughput(gated.port, gated.token); // warm-up (fills the cache)
        const ratios: number[] = [];
        const cpuRatios: number[] = [];
        const overheads: number[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const a = await throughput(bare.port, undefined);
          const b = await throughput(gated.port, gated.token);
          ratios.push(b.rps / a.rps);
          cpuRatios.push(a.cpuPerRequest / b.cpuPerRequest);
          overheads.push(b.cpuPerRequest - a.cpuPerRequest);
        }
        row(
          `Throughput: ${label} / bare Express`,
          fmt(median(ratios)),
          '≥ 0.93',
          'req/s under autocannon, same 2 cores',
        );
        row(
          `Server CPU: bare / ${label}`,
          fmt(median(cpuRatios)),
          '≥ 0.93',
          `protect() adds ${fmt(median(overheads), 0)} µs CPU per request`,
        );
      } finally {
        gated.child.kill();
      }
    }
  } finally {
    bare.child.kill();
  }
}

/** Mean time of `work` in microseconds, median of five batches. */
async function perCall(work: () => Promise<unknown>, iterations: number): Promise<number> {
  const batches: number[] = [];
  for (let b = 0; b < 5; b++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await work();
    batches.push(Number(process.hrtime.bigint() - started) / 1e3 / iterations);
  }
  return median(batches);
}

async function commandCount(redis: Redis): Promise<number> {
  const info = await redis.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)![1]);
}

const service = (store: TokenStore, hasher: TokenHasher = sha256Hasher(), cache = true) =>
  new TokenService({ store, hasher, tokenPrefix: 'bbt', cache: cache ? {} : { maxEntries: 0 } });

async function verificationCosts(redis: Redis): Promise<void> {
  const memory = service(new MemoryTokenStore());
  const { token } = await memory.create({ user: 'alice', name: 'x', scope: 'read' });
  await memory.verify(token);
  const hit = await perCall(() => memory.verify(token), 100_000);
  row('Verify: cache hit', `${fmt(hit)} µs`, '< 5 µs', 'in-process, per call');

  const missMemory = service(new MemoryTokenStore(), sha256Hasher(), false);
  const memoryToken = (await missMemory.create({ user: 'alice', name: 'x', scope: 'read' })).token;
  const missMem = await perCall(() => missMemory.verify(memoryToken), 20_000);
  row(
    'Verify: cache miss, sha256, memory store',
    `${fmt(missMem)} µs`,
    '',
    `${fmt(missMem / hit, 1)} × a cache hit`,
  );

  const redisService = service(
    new RedisTokenStore({ redis, keyPrefix: 'bench-verify' }),
    sha256Hasher(),
    false,
  );
  const redisToken = (await redisService.create({ user: 'alice', name: 'x', scope: 'read' })).token;
  await redisService.verify(redisToken);
  const before = await commandCount(redis);
  const n = 2_000;
  const missRedis = await perCall(() => redisService.verify(redisToken), n / 5);
  // `INFO` itself is one command; the lookups are all the rest.
  const commands = ((await commandCount(redis)) - before - 1) / n;
  row(
    'Verify: cache miss, sha256, Redis store',
    `${fmt(missRedis)} µs`,
    '1 round trip',
    `${fmt(commands)} Redis commands per verify`,
  );

  // A first verification runs bcrypt; later ones of the same token only re-read the record.
  const bcrypt = service(new MemoryTokenStore(), bcryptHasher(), false);
  const bcryptTokens = await Promise.all(
    Array.from({ length: 5 }, () => bcrypt.create({ user: 'alice', name: 'x', scope: 'read' })),
  );
  const firstChecks: number[] = [];
  for (const { token: fresh } of bcryptTokens) {
    const started = process.hrtime.bigint();
    await bcrypt.verify(fresh);
    firstChecks.push(Number(process.hrtime.bigint() - started) / 1e3);
  }
  const missBcrypt = median(firstChecks);
  row(
    'Verify: cache miss, bcrypt (cost 10), first check',
    `${fmt(missBcrypt / 1000)} ms`,
    '',
    `${fmt(missBcrypt / hit, 0)} × a cache hit`,
  );
  const again = await perCall(() => bcrypt.verify(bcryptTokens[0]!.token), 2_000);
  row(
    'Verify: cache miss, bcrypt, token checked before',
    `${fmt(again)} µs`,
    '',
    'record re-read, same stored hash: no bcrypt',
  );
}

async function scale(redis: Redis): Promise<void> {
  const small = new RedisTokenStore({ redis, keyPrefix: 'bench-small' });
  const large = new RedisTokenStore({ redis, keyPrefix: 'bench-large' });
  const hasher = sha256Hasher();
  const fill = async (store: RedisTokenStore, count: number, user: (i: number) => string) => {
    const tokens: string[] = [];
    const batch = 2_000;
    for (let start = 0; start < count; start += batch) {
      await Promise.all(
        Array.from({ length: Math.min(batch, count - start) }, async (_, k) => {
          const i = start + k;
          const { id, secret } = generateToken('bbt');
          const record: TokenRecord = {
            id,
            user: user(i),
            name: `token ${i} ${i % 7 === 0 ? 'deploy' : 'laptop'}`,
            scope: i % 3 ? 'read' : 'write',
            hash: await hasher.hash(id + secret),
            createdAt: Date.now() - (count - i),
            createdBy: 'bench',
            expiresAt: null,
            lastUsedAt: null,
            lastUsedIp: null,
            ...UNRESTRICTED,
          };
          await store.put(record);
          if (i % 1000 === 0) tokens.push(assembleToken('bbt', id, secret));
        }),
      );
    }
    return tokens;
  };
  const started = Date.now();
  const smallTokens = await fill(small, 100, () => 'small-user');
  const largeTokens = await fill(large, 100_000, (i) => (i < 1_000 ? 'heavy-user' : `user-${i % 5_000}`));
  console.error(`  (stored 100,100 tokens in Redis in ${((Date.now() - started) / 1000).toFixed(1)} s)`);

  const smallService = service(small, hasher, false);
  const largeService = service(large, hasher, false);
  const latency = async (svc: TokenService, tokens: string[]) => perCall(() => svc.verify(tokens[0]!), 400);
  const latencies = { small: [] as number[], large: [] as number[] };
  for (let round = 0; round < 3; round++) {
    latencies.small.push(await latency(smallService, smallTokens));
    latencies.large.push(await latency(largeService, largeTokens));
  }
  row(
    'Scale: verify latency, 100,000 / 100 tokens in Redis',
    fmt(median(latencies.large) / median(latencies.small)),
    '≈ 1.00',
    `${fmt(median(latencies.large))} µs vs ${fmt(median(latencies.small))} µs`,
  );
  const listTime = await perCall(() => large.listByUser('heavy-user'), 3);
  row(
    'Scale: list a user with 1,000 tokens (Redis)',
    `${fmt(listTime / 1000)} ms`,
    '',
    '1 ZREVRANGE + 1,000 HGETALL',
  );
  const page = await perCall(() => large.search({ name: 'deploy', scope: 'write', start: 0, limit: 25 }), 5);
  row(
    'Scale: token manager page, name+scope filter, 100,000 tokens',
    `${fmt(page / 1000)} ms`,
    '',
    'examines ≤ 1,000 index entries',
  );
  const firstPage = await perCall(() => large.search({ start: 0, limit: 25 }), 5);
  row(
    'Scale: token manager page, no filter, 100,000 tokens',
    `${fmt(firstPage / 1000)} ms`,
    '',
    '25 index entries',
  );

  const gc = (globalThis as { gc?: () => void }).gc;
  const heap = () => {
    gc?.();
    return process.memoryUsage().heapUsed;
  };
  const memStore = new MemoryTokenStore();
  const base = heap();
  for (let i = 0; i < 100_000; i++) {
    const { id, secret } = generateToken('bbt');
    await memStore.put({
      id,
      user: `user-${i % 5_000}`,
      name: `token ${i}`,
      scope: 'read',
      hash: await hasher.hash(id + secret),
      createdAt: Date.now(),
      createdBy: 'bench',
      expiresAt: null,
      lastUsedAt: null,
      lastUsedIp: null,
      ...UNRESTRICTED,
    });
  }
  row(
    'Memory: MemoryTokenStore, 100,000 tokens',
    `${fmt((heap() - base) / 1048576, 1)} MiB`,
    '',
    gc ? 'heap, after GC' : 'heap (run with --expose-gc for exact)',
  );
  await memStore.close();

  const cacheService = service(new MemoryTokenStore(), hasher, true);
  const cacheTokens = await Promise.all(
    Array.from({ length: 10_000 }, (_, i) =>
      cacheService.create({ user: `u${i}`, name: 'x', scope: 'read' }),
    ),
  );
  const beforeCache = heap();
  for (const { token } of cacheTokens) await cacheService.verify(token);
  row(
    'Memory: full verified-token cache (10,000 entries)',
    `${fmt((heap() - beforeCache) / 1048576, 1)} MiB`,
    '',
    `${cacheTokens.length} tokens verified`,
  );
}

async function rejections(): Promise<void> {
  const store = countCalls(new MemoryTokenStore());
  const hasher = countCalls(sha256Hasher());
  const tokens = service(store.target, hasher.target);
  const { token } = await tokens.create({ user: 'alice', name: 'x', scope: 'read' });
  store.calls.length = 0;
  hasher.calls.length = 0;
  const garbage = [
    '',
    'garbage',
    `bbt_${'x'.repeat(60)}`,
    `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`,
  ];
  for (let i = 0; i < 2_500; i++) for (const bad of garbage) await tokens.verify(bad);
  row(
    'Rejection: 10,000 garbage and bad-checksum tokens',
    `${store.calls.length} store calls`,
    '0',
    `${hasher.count('verify')} hash checks`,
  );
  const unknown = Array.from({ length: 1_000 }, () => generateToken('bbt').token);
  for (const t of unknown) await tokens.verify(t);
  row(
    'Rejection: 1,000 unknown ids',
    `${store.count('get')} lookups`,
    '1 each',
    `${hasher.count('verify')} hash checks`,
  );
}

/** Event-loop delay while 50 never-seen bcrypt tokens are checked at once, before and after the worker pool. */
async function eventLoop(): Promise<void> {
  for (const threads of [0, 2]) {
    const delay = await loopDelayDuringBcrypt(threads);
    row(
      `Event-loop delay p99, 50 new bcrypt tokens, ${threads === 0 ? 'bcrypt on the main thread' : `${threads} bcrypt threads`}`,
      `${fmt(delay.p99, 1)} ms`,
      threads === 0 ? '' : '< 10 ms',
      `max ${fmt(delay.max, 1)} ms; the 50 first checks took ${delay.burstMs} ms`,
    );
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  console.error(
    `express-api-tokens bench on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  );
  const redisServer = await startRedisServer();
  const redis = new Redis(redisServer.url);
  try {
    await throughputRatios(redisServer.url);
    await verificationCosts(redis);
    await scale(redis);
    await rejections();
    await eventLoop();
  } finally {
    redis.disconnect();
    await redisServer.stop();
  }
  const widths = [0, 1, 2, 3].map((c) =>
    Math.max(...[['Measure', 'Result', 'Target', 'Notes'], ...rows].map((r) => (r[c] ?? '').length)),
  );
  const line = (cells: string[]) => `| ${cells.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  console.log(line(['Measure', 'Result', 'Target', 'Notes']));
  console.log(`| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`);
  for (const r of rows) console.log(line(r));
  console.log(
    `\n${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; ${ROUNDS} alternating rounds of ${SECONDS} s; total ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
}

await main();
