import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startProxy } from '../../examples/bitbucket-proxy.js';
import { basic } from '../support/apps.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('proxy-store');
afterAll(() => temp.remove());

describe('the example proxy’s token store', () => {
  it('keeps tokens made before a restart in its SQLite file (TOKEN_STORE)', async () => {
    const env = { PORT: '0', TOKEN_STORE: `sqlite:${join(temp.dir, 'data', 'tokens.db')}` };
    const first = await startProxy(env);
    const created = await fetch(`${first.url}/tokens/api`, {
      method: 'POST',
      headers: { authorization: basic('demo', 'demo'), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'laptop', scope: 'read' }),
    });
    expect(created.status).toBe(201);
    const { token } = (await created.json()) as { token: string };
    const oldDemoToken = first.demo!.readToken;
    expect(first.storeUrl).toBe(env.TOKEN_STORE);
    await first.close();

    const second = await startProxy(env);
    try {
      const call = (t: string) =>
        fetch(`${second.url}/rest/api/1.0/projects`, { headers: { authorization: `Bearer ${t}` } });
      expect((await call(token)).status).toBe(200);
      // The demo keeps the tokens its first start printed (and prints no secret again).
      expect((await call(oldDemoToken!)).status).toBe(200);
      expect(second.demo!.readToken).toBeUndefined();
      expect(second.demo!.keptIds).toHaveLength(2);
    } finally {
      await second.close();
    }
  });
});
