import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { demoInstructions, type RunningProxy, startProxy } from '../../examples/bitbucket-proxy.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('proxy-mode-switch');
const running: RunningProxy[] = [];
afterAll(async () => {
  for (const proxy of running) await proxy.close();
  temp.remove();
});

async function start(env: Record<string, string>): Promise<RunningProxy> {
  const proxy = await startProxy(env);
  running.push(proxy);
  return proxy;
}

async function stop(proxy: RunningProxy): Promise<void> {
  running.splice(running.indexOf(proxy), 1);
  await proxy.close();
}

const call = async (proxy: RunningProxy, token: string) =>
  (await fetch(`${proxy.url}/rest/api/1.0/projects`, { headers: { authorization: `Bearer ${token}` } }))
    .status;

/**
 * `npm start`, then `BITBUCKET_UPSTREAM_MODE=access-token npm start` on the same ./data: the
 * first start's demo tokens have no Bitbucket access token behind them, so the second start
 * must not claim they still work.
 */
describe('the demo proxy started in the other mode on the same data directory', () => {
  it('replaces header-mode demo tokens in access-token mode, and keeps access-token ones in header mode', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const env = {
      PORT: '0',
      BITBUCKET_URL: '',
      REDIS_URL: '',
      TOKEN_STORE: `sqlite:${join(temp.dir, 'data', 'tokens.db')}`,
    };
    const header = await start(env);
    const old = header.demo!.readToken!;
    await stop(header);

    const accessTokens = await start({ ...env, BITBUCKET_UPSTREAM_MODE: 'access-token' });
    const { readToken, writeToken, keptIds, replacedIds } = accessTokens.demo!;
    expect(readToken).toMatch(/^bbt_/);
    expect(writeToken).toMatch(/^bbt_/);
    expect(keptIds).toEqual([]);
    expect(replacedIds).toHaveLength(2);
    const text = demoInstructions(accessTokens);
    expect(text).not.toMatch(/still work/);
    expect(text).toContain(`made in the other mode (ids ${replacedIds.join(', ')})`);
    expect(text).toContain(readToken!);
    expect(await call(accessTokens, readToken!)).toBe(200);
    expect(await call(accessTokens, old)).toBe(401);
    await stop(accessTokens);

    // Back in header mode the access-token ones still work: they are kept, not printed again.
    const back = await start(env);
    expect(back.demo!.replacedIds).toEqual([]);
    expect(back.demo!.keptIds).toHaveLength(2);
    expect(demoInstructions(back)).toMatch(/still work/);
    expect(await call(back, readToken!)).toBe(200);
    await stop(back);
    log.mockRestore();
  }, 60_000);
});
