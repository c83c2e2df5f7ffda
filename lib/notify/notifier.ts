import type { AuditEvent, EventListener } from '../events.js';
import type { TokenStore } from '../stores/token-store.js';
import { DeliveryQueue, type DeliveryStats } from './delivery-queue.js';
import { EmailSink } from './email-sink.js';
import { eventIdentity, eventMessage, type SinkEvent, safeFields, tokenShapeOf } from './event-text.js';
import type { NotifyOptions, NotifyRetryOptions } from './options.js';
import { newDeliveryId, WebhookSink } from './webhook-sink.js';

/** How long a delivery stays claimed: past the reminders' look-back, so a restart never repeats one. */
const CLAIM_MS = 3 * 86_400_000;

const retryPolicy = (retry: NotifyRetryOptions | undefined) => ({
  attempts: retry?.attempts ?? 5,
  firstDelayMs: retry?.firstDelayMs ?? 30_000,
});

/**
 * The gate's notification sinks (`notify`): an event listener that queues e-mails and webhook
 * deliveries and returns at once. Each delivery is claimed in the store first, so a fleet
 * sharing the store sends it once, whichever instance saw the event.
 */
export class Notifier {
  readonly listener: EventListener;
  readonly #queues: DeliveryQueue[] = [];
  readonly #email: EmailSink | undefined;

  constructor(options: Readonly<NotifyOptions>, store: TokenStore, tokenPrefix: string) {
    const onError = (err: unknown) => {
      try {
        options.onError?.(err instanceof Error ? err : new Error(String(err)));
      } catch {
        // A broken error sink must not break the queue.
      }
    };
    const shape = tokenShapeOf(tokenPrefix);
    const claimed = new Set<string>();
    // Claimed in the store when it can (the fleet), else here (this instance).
    const claim = async (key: string): Promise<boolean> => {
      if (store.claim !== undefined) return store.claim(key, CLAIM_MS);
      if (claimed.has(key)) return false;
      claimed.add(key);
      return true;
    };
    /** A delivery that first claims its key, once: retries do not claim again. */
    const once = (key: string, work: () => Promise<void>) => {
      let ours: boolean | undefined;
      return async () => {
        ours ??= await claim(key);
        if (ours) await work();
      };
    };

    const email = options.email === undefined ? undefined : new EmailSink(options.email);
    this.#email = email;
    const mailQueue =
      options.email === undefined
        ? undefined
        : new DeliveryQueue(options.email.maxQueued ?? 1_000, retryPolicy(options.email.retry), onError);
    const hooks = (options.webhooks ?? []).map((hook) => ({
      sink: new WebhookSink(hook),
      queue: new DeliveryQueue(hook.maxQueued ?? 1_000, retryPolicy(hook.retry), onError),
    }));
    if (mailQueue !== undefined) this.#queues.push(mailQueue);
    for (const hook of hooks) this.#queues.push(hook.queue);

    this.listener = (audit: AuditEvent) => {
      const event = audit as unknown as SinkEvent;
      const type = event.type;
      if (email !== undefined && mailQueue !== undefined && email.wants(type)) {
        const fields = safeFields(event, shape);
        const identity = eventIdentity(event);
        const user = typeof fields['user'] === 'string' ? fields['user'] : undefined;
        // Recipients are looked up in the background; each gets a delivery (and a claim) of its own.
        mailQueue.add(async () => {
          const { subject, text } = eventMessage(fields, email.renewUrl(fields['tokenId']));
          for (const to of await email.recipients(type, user))
            mailQueue.add(
              once(`notify:email:${identity}:${to.toLowerCase()}`, () => email.send(to, subject, text)),
            );
        });
      }
      for (const { sink, queue } of hooks) {
        if (!sink.wants(type)) continue;
        const fields = safeFields(event, shape);
        const delivery = newDeliveryId();
        queue.add(once(`notify:${sink.id}:${eventIdentity(event)}`, () => sink.post(delivery, type, fields)));
      }
    };
  }

  /** Deliveries done, given up and dropped, over every sink. */
  get stats(): DeliveryStats {
    const total: DeliveryStats = { delivered: 0, failed: 0, dropped: 0 };
    for (const queue of this.#queues) {
      total.delivered += queue.stats.delivered;
      total.failed += queue.stats.failed;
      total.dropped += queue.stats.dropped;
    }
    return total;
  }

  /** Resolves once every queue is empty (tests; a graceful shutdown). */
  async idle(): Promise<void> {
    // A mail delivery adds its recipients' deliveries: wait until nothing is left anywhere.
    while (this.#queues.some((queue) => !queue.isIdle()))
      await Promise.all(this.#queues.map((q) => q.idle()));
  }

  close(): void {
    for (const queue of this.#queues) queue.close();
    this.#email?.close();
  }
}
