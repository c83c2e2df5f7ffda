import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, type RedisProcess, retryUntil, startRedisServer } from './redis-server.js';

export interface RedisSentinelSetup {
  master: RedisProcess;
  sentinelPort: number;
  /** An ioredis client that finds the master through Sentinel. */
  connect(): Redis;
  stop(): Promise<void>;
}

/** A master and one Sentinel monitoring it (as `mymaster`), both from `redis-server`. */
export async function startRedisSentinel(): Promise<RedisSentinelSetup> {
  const master = await startRedisServer();
  const sentinelPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'eat-sentinel-'));
  const config = join(dir, 'sentinel.conf');
  writeFileSync(
    config,
    [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`,
      'sentinel down-after-milliseconds mymaster 1000',
      '',
    ].join('\n'),
  );
  const child = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
    await master.stop();
  };
  const probe = new Redis({
    port: sentinelPort,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
  });
  probe.on('error', () => {});
  try {
    await retryUntil(
      'redis sentinel',
      () => child.exitCode !== null,
      async () => {
        if (probe.status === 'wait') await probe.connect();
        const address = (await probe.call('SENTINEL', 'get-master-addr-by-name', 'mymaster')) as
          | string[]
          | null;
        return address?.[1] === String(master.port);
      },
    );
  } catch (err) {
    await stop();
    throw err;
  } finally {
    probe.disconnect();
  }
  return {
    master,
    sentinelPort,
    connect: () => new Redis({ sentinels: [{ host: '127.0.0.1', port: sentinelPort }], name: 'mymaster' }),
    stop,
  };
}
