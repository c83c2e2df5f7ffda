import type { AuditEvent, EventListener } from '../events.js';
import type { TokenStore } from '../stores/token-store.js';
import type { DeliveryStats } from './delivery-queue.js';
import type { Notifier } from './notifier.js';
import type { NotifyOptions } from './options.js';

/** Events that may wait while the sinks load (a gate emits few before it serves anything). */
const MAX_WAITING = 1_000;

/** What the gate holds of its notifier: the listener, the delivery figures, and `close()`. */
export interface NotifierHandle {
  readonly listener: EventListener;
  readonly stats: DeliveryStats;
  close(): void;
}

/**
 * The `notify` sinks, imported when the gate is made rather than with the package (an app
 * without notifications never loads them). Events emitted meanwhile are handed over once the
 * sinks are there; past `MAX_WAITING` they are counted as dropped, as a full queue does.
 */
export function startNotifier(
  options: Readonly<NotifyOptions>,
  store: TokenStore,
  tokenPrefix: string,
): NotifierHandle {
  let notifier: Notifier | undefined;
  let closed = false;
  let failed = false;
  let dropped = 0;
  const waiting: AuditEvent[] = [];
  import('./notifier.js').then(
    ({ Notifier }) => {
      if (closed) return;
      notifier = new Notifier(options, store, tokenPrefix);
      for (const event of waiting.splice(0)) notifier.listener(event);
    },
    (err: unknown) => {
      failed = true;
      dropped += waiting.splice(0).length;
      try {
        options.onError?.(err instanceof Error ? err : new Error(String(err)));
      } catch {
        // A broken error sink changes nothing here.
      }
    },
  );
  return {
    listener(event) {
      if (notifier !== undefined) notifier.listener(event);
      else if (!closed && !failed && waiting.length < MAX_WAITING) waiting.push(event);
      else dropped++;
    },
    get stats() {
      const stats = notifier?.stats ?? { delivered: 0, failed: 0, dropped: 0 };
      return { ...stats, dropped: stats.dropped + dropped };
    },
    close() {
      closed = true;
      notifier?.close();
    },
  };
}
