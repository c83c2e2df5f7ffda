import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

/** A free TCP port on loopback (and, for cluster nodes, port + 10000 free too). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port > 0 && port < 55_000) return port;
  }
}

export interface RedisProcess {
  port: number;
  url: string;
  dir: string;
  process: ChildProcess;
  /** Kills the server (SIGKILL: no goodbye to clients); `keepFiles` keeps its data for a restart. */
  stop(keepFiles?: boolean): Promise<void>;
}

/**
 * Starts a throw-away `redis-server` on a free port (or the given one, reusing `dir` to restart
 * it with its data); `stop()` kills it and removes its files unless told to keep them.
 */
export async function startRedisServer(
  extraArgs: string[] = [],
  port?: number,
  reuseDir?: string,
): Promise<RedisProcess> {
  const chosen = port ?? (await freePort());
  const dir = reuseDir ?? mkdtempSync(join(tmpdir(), 'eat-redis-'));
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(chosen),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...extraArgs,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await retryUntil(
    `redis-server on ${chosen}`,
    () => child.exitCode !== null,
    () => answersPing(chosen),
  );
  return {
    port: chosen,
    url: `redis://127.0.0.1:${chosen}`,
    dir,
    process: child,
    async stop(keepFiles = false) {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      if (!keepFiles) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Retries `attempt` every 50 ms until it resolves true. Gives up after about ten seconds, or
 * at once when `gaveUp()` says the process died.
 */
export async function retryUntil(
  what: string,
  gaveUp: () => boolean,
  attempt: () => Promise<boolean>,
): Promise<void> {
  let last: unknown;
  for (let i = 0; i < 200; i++) {
    if (gaveUp()) break;
    try {
      if (await attempt()) return;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`${what} did not become ready${last ? `: ${String(last)}` : ''}`);
}

async function answersPing(port: number): Promise<boolean> {
  return redisAnswers(`redis://127.0.0.1:${port}`);
}

/** True when a Redis answers PING at the URL within a second. */
export async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
