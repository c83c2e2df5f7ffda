import type { TokenStore } from '../stores/token-store.js';
import type { TokenVerifier } from './verifier.js';

/** The gate's subscription to its store's revocation feed. */
export interface RevocationFeed {
  /** True while revocations made elsewhere reach this instance. */
  readonly connected: boolean;
  stop(): Promise<void>;
}

/**
 * Subscribes to the store's revocation feed, retrying while it is down. While the feed is not
 * connected the verified-token cache is not trusted (every request asks the store), so a
 * revocation made by another instance can never be missed. A store without a feed is local
 * (memory): its own revocations reach the cache directly.
 */
export function listenForRevocations(store: TokenStore, verifier: TokenVerifier): RevocationFeed {
  let connected = store.subscribe === undefined;
  if (store.subscribe === undefined) return { connected, stop: async () => {} };
  let stopped = false;
  let unsubscribe: (() => Promise<void>) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const setConnected = (value: boolean) => {
    connected = value;
    verifier.trusted = value;
  };
  setConnected(false);
  const attempt = () => {
    store.subscribe!((id) => verifier.forget(id), setConnected).then(
      (stop) => {
        if (stopped) {
          void stop();
          return;
        }
        unsubscribe = stop;
        setConnected(true);
      },
      () => {
        if (!stopped) timer = setTimeout(attempt, 1_000).unref();
      },
    );
  };
  attempt();
  return {
    get connected() {
      return connected;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await unsubscribe?.();
    },
  };
}
