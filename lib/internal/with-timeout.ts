import { StoreError, TokenGateError } from '../errors.js';

/**
 * Runs a store call with a deadline. Anything that is not already one of our errors becomes a
 * StoreError, so a store failure is always a 503 and never "not found".
 */
export async function storeCall<T>(work: () => Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreError('The token store did not answer in time.')), timeoutMs);
  });
  try {
    return await Promise.race([work(), deadline]);
  } catch (err) {
    if (err instanceof TokenGateError) throw err;
    throw new StoreError(undefined, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
