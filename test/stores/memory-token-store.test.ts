import { describe, expect, it } from 'vitest';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { makeRecord, runTokenStoreContract } from './contract.js';

runTokenStoreContract('MemoryTokenStore', async () => {
  const store = new MemoryTokenStore();
  return { store, cleanup: () => store.close() };
});

describe('MemoryTokenStore', () => {
  it('sweeps expired tokens out on its timer', async () => {
    const store = new MemoryTokenStore({ sweepIntervalMs: 20 });
    await store.put(makeRecord({ expiresAt: Date.now() + 10 }));
    await store.put(makeRecord());
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(store.size).toBe(1);
    await store.close();
  });

  it('refuses a sweep interval that is not a positive integer', () => {
    expect(() => new MemoryTokenStore({ sweepIntervalMs: 0 })).toThrow(/sweepIntervalMs/);
  });
});
