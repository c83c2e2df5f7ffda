import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { verifierOf } from '../../lib/tokens/service.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('sqlite-proc');
afterAll(() => temp.remove());

interface Exit {
  stdout: string;
  signal: NodeJS.Signals | null;
  code: number | null;
}

/** Runs test/support/sqlite-worker.ts in its own process; `onLine` sees its output as it comes. */
function worker(file: string, args: string[], onLine?: (line: string) => void): Promise<Exit> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/sqlite-worker.ts', file, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const line of chunk.toString().split('\n')) if (line) onLine?.(line);
  });
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ stdout, signal, code })));
}

const gateOn = (path: string) =>
  createTokenGate({ store: new SqliteTokenStore({ path }), hasher: sha256Hasher({ pepper: 'test-pepper' }) });

describe('SqliteTokenStore shared by several processes', () => {
  it('keeps a token whose creator was killed with SIGKILL right after create returned', async () => {
    const path = join(temp.dir, 'durable.db');
    const created = await worker(path, ['create-and-die', 'alice']);
    expect(created.signal).toBe('SIGKILL');
    const token = /TOKEN (\S+)/.exec(created.stdout)![1]!;
    // This process never had the file open: what it reads comes from the disk.
    const gate = gateOn(path);
    try {
      expect(await gate.tokens.verify(token)).toMatchObject({ user: 'alice', name: 'durable' });
    } finally {
      await gate.close();
    }
  });

  it('refuses, within one second, a token another process revoked, even while it is cached here', async () => {
    const path = join(temp.dir, 'revocation.db');
    const gate = gateOn(path);
    try {
      const { token, info } = await gate.tokens.create({ user: 'bob', name: 'ci', scope: 'read' });
      await new Promise((resolve) => setTimeout(resolve, 100)); // the feed is up
      expect(await gate.tokens.verify(token)).not.toBeNull();
      expect(verifierOf(gate.tokens).checkCached(token)).toMatchObject({ ok: true }); // answered from the cache now
      let revokedAt = 0;
      await worker(path, ['revoke', info.id], (line) => {
        if (line === 'REVOKED') revokedAt = Date.now();
      });
      expect(revokedAt).toBeGreaterThan(0);
      while ((await gate.tokens.verify(token)) !== null && Date.now() - revokedAt < 2_000)
        await new Promise((resolve) => setTimeout(resolve, 10));
      const latency = Date.now() - revokedAt;
      expect(await gate.tokens.verify(token)).toBeNull();
      expect(latency).toBeLessThan(1_000);
      console.log(`SQLite: a revocation by another process was refused here after ${latency} ms`);
    } finally {
      await gate.close();
    }
  });

  it('shares failure counts and claims between processes', async () => {
    const path = join(temp.dir, 'counters.db');
    const store = new SqliteTokenStore({ path });
    try {
      const runs = await Promise.all([
        worker(path, ['share', 'ip:198.51.100.7', '30', 'reminder:', '30']),
        worker(path, ['share', 'ip:198.51.100.7', '30', 'reminder:', '30']),
        (async () => {
          for (let i = 0; i < 30; i++) await store.countFailure('ip:198.51.100.7', 60_000);
          const won: string[] = [];
          for (let i = 0; i < 30; i++)
            if (await store.claim(`reminder:${i}`, 60_000)) won.push(`reminder:${i}`);
          return { stdout: JSON.stringify(won), signal: null, code: 0 };
        })(),
      ]);
      expect(await store.failureCount('ip:198.51.100.7')).toBe(90);
      const claimed = runs.flatMap((run) => JSON.parse(run.stdout) as string[]);
      expect(claimed.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `reminder:${i}`).sort());
    } finally {
      await store.close();
    }
  });
});
