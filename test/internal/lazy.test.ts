import { describe, expect, it } from 'vitest';
import { lazy, whenLoaded } from '../../lib/internal/lazy.js';

describe('lazy', () => {
  it('loads once for every caller, and keeps the value', async () => {
    let loads = 0;
    const value = lazy(async () => ++loads);
    expect(value.loaded).toBeUndefined();
    expect(await Promise.all([value.get(), value.get(), value.get()])).toEqual([1, 1, 1]);
    expect(value.loaded).toBe(1);
    expect(await value.get()).toBe(1);
    expect(loads).toBe(1);
  });

  it('reports a failed load to each caller, and loads again on the next ask', async () => {
    let attempts = 0;
    const value = lazy(async () => {
      attempts++;
      if (attempts === 1) throw new Error('cannot load');
      return 'ok';
    });
    await expect(value.get()).rejects.toThrow('cannot load');
    expect(value.loaded).toBeUndefined();
    expect(await value.get()).toBe('ok');
    expect(attempts).toBe(2);
  });
});

describe('whenLoaded', () => {
  it('hands a failed load to next', async () => {
    const value = lazy<string>(async () => {
      throw new Error('cannot load');
    });
    const err = await new Promise<unknown>((next) => whenLoaded(value, next, () => {}));
    expect(err).toMatchObject({ message: 'cannot load' });
  });

  it('hands what the handler throws to next instead of an unhandled rejection', async () => {
    const value = lazy(async () => 'loaded');
    const err = await new Promise<unknown>((next) =>
      whenLoaded(value, next, () => {
        throw new Error('handler failed');
      }),
    );
    expect(err).toMatchObject({ message: 'handler failed' });
  });

  it('runs the handler at once, without a promise, once the value is there', async () => {
    const value = lazy(async () => 'loaded');
    await value.get();
    let ran: string | undefined;
    whenLoaded(
      value,
      () => {},
      (v) => {
        ran = v;
      },
    );
    expect(ran).toBe('loaded');
  });
});
