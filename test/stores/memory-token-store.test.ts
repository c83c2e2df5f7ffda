import { describe, expect, it } from 'vitest';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { EXPIRED_RETENTION_MS } from '../../lib/stores/token-store.js';
import { makeRecord, runTokenStoreContract } from '../../lib/testing/index.js';

runTokenStoreContract('MemoryTokenStore', async () => {
  const store = new MemoryTokenStore();
  return { store, cleanup: () => store.close() };
});

describe('MemoryTokenStore', () => {
  it('sweeps tokens out on its timer once their retention has passed, not before', async () => {
    const store = new MemoryTokenStore({ sweepIntervalMs: 20 });
    const now = Date.now();
    await store.put(makeRecord({ expiresAt: now - EXPIRED_RETENTION_MS + 40 }));
    const recent = makeRecord({ expiresAt: now - 1_000 });
    await store.put(recent);
    await store.put(makeRecord());
    expect(store.size).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(store.size).toBe(2);
    expect((await store.expiringBetween(now - 2_000, now, 10)).map((r) => r.id)).toEqual([recent.id]);
    await store.close();
  });

  it('refuses a sweep interval that is not a positive integer', () => {
    expect(() => new MemoryTokenStore({ sweepIntervalMs: 0 })).toThrow(/sweepIntervalMs/);
  });

  it('refuses an unknown option the way every store does, naming the closest one', () => {
    expect(() => new MemoryTokenStore({ sweepIntervalMS: 10 } as never)).toThrow(
      /Unknown option `sweepIntervalMS`; did you mean `sweepIntervalMs`\?/,
    );
  });
});
