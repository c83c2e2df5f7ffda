import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import { makeRecord } from '../../lib/testing/index.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('private');
afterAll(() => temp.remove());

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

/** Runs the worker under `umask 000`; resolves with a function that lets it close and exit. */
function openUnderUmask000(url: string): Promise<{ umask: string; finish(): Promise<void> }> {
  const child = spawn(
    'sh',
    [
      '-c',
      'umask 000 && exec "$0" --import tsx test/support/private-files-worker.ts "$1"',
      process.execPath,
      url,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const ready = /READY (\d+)/.exec(out);
      if (ready)
        resolve({
          umask: ready[1]!,
          finish: () => {
            child.stdin.end();
            return exited;
          },
        });
    });
    void exited.then(() => reject(new Error(`worker exited before it was ready: ${out}`)));
  });
}

describe('files the SQLite store creates', () => {
  it('are the owner’s only under umask 000: directories 0700, the database, -wal and -shm 0600', async () => {
    const dir = join(temp.dir, 'data', 'proxy');
    const file = join(dir, 'tokens.db');
    const worker = await openUnderUmask000(`sqlite:${file}`);
    try {
      expect(worker.umask).toBe('0');
      expect(modeOf(join(temp.dir, 'data'))).toBe('700');
      expect(modeOf(dir)).toBe('700');
      expect(modeOf(file)).toBe('600');
      expect(modeOf(`${file}-wal`)).toBe('600');
      expect(modeOf(`${file}-shm`)).toBe('600');
    } finally {
      await worker.finish();
    }
  });

  it('leave an existing database file’s mode alone', async () => {
    const file = join(temp.dir, 'existing.db');
    const first = new SqliteTokenStore({ path: file });
    await first.put(makeRecord());
    await first.close();
    const { chmodSync } = await import('node:fs');
    chmodSync(file, 0o640); // an operator's choice (a backup group) is kept
    const again = new SqliteTokenStore({ path: file });
    await again.close();
    expect(modeOf(file)).toBe('640');
  });
});
