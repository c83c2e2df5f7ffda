import { StoreError, TokenGateError } from '../errors.js';

/** Rejects with `onTimeout()` when `work` has not settled within `ms`. */
export async function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a store call with a deadline. Anything that is not already one of our errors becomes a
 * StoreError, so a store failure is always a 503 and never "not found".
 */
export async function storeCall<T>(work: () => Promise<T>, timeoutMs: number): Promise<T> {
  try {
    return await withTimeout(
      work(),
      timeoutMs,
      () => new StoreError('The token store did not answer in time.'),
    );
  } catch (err) {
    if (err instanceof TokenGateError) throw err;
    throw new StoreError(undefined, { cause: err });
  }
}
