import type { TokenStore } from '../stores/token-store.js';
import type { TokenService } from '../tokens/service.js';

/**
 * Subscribes to the store's revocation feed, retrying while it is down. Until the feed is up,
 * the verified-token cache is not trusted (every request asks the store), so a revocation can
 * never be missed.
 */
export function listenForRevocations(store: TokenStore, tokens: TokenService): { stop(): Promise<void> } {
  if (!store.subscribe) return { stop: async () => {} };
  let stopped = false;
  let unsubscribe: (() => Promise<void>) | undefined;
  let timer: NodeJS.Timeout | undefined;
  tokens.cacheTrusted = false;
  const attempt = () => {
    store.subscribe!((id) => tokens.forget(id)).then(
      (stop) => {
        if (stopped) {
          void stop();
          return;
        }
        unsubscribe = stop;
        tokens.cacheTrusted = true;
      },
      () => {
        if (!stopped) timer = setTimeout(attempt, 1_000).unref();
      },
    );
  };
  attempt();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await unsubscribe?.();
    },
  };
}
