import { createHash, createHmac, randomUUID } from 'node:crypto';
import { PermanentFailure } from './delivery-queue.js';
import type { WebhookOptions } from './options.js';

/** The headers of a delivery: what the receiver checks and dedupes by. */
export const SIGNATURE_HEADER = 'API-Tokens-Signature';
export const DELIVERY_HEADER = 'API-Tokens-Delivery';
export const EVENT_HEADER = 'API-Tokens-Event';

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp is signed with the body,
 * so a receiver that refuses old timestamps (say, five minutes) cannot be replayed to.
 * @example
 * // The receiving side:
 * const [t, v1] = header.split(',').map((part) => part.slice(part.indexOf('=') + 1));
 * const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest('hex');
 * const fresh = Math.abs(Date.now() / 1000 - Number(t)) < 300;
 * const valid = fresh && timingSafeEqual(Buffer.from(v1), Buffer.from(expected));
 */
export function signWebhook(secret: string | Buffer, body: string, now = Date.now()): string {
  const t = Math.floor(now / 1000);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** A webhook target: which events it takes, and how one is posted. */
export class WebhookSink {
  /** Names the sink in claims: a hash of the URL (never the URL's credentials, if it has any). */
  readonly id: string;
  readonly #options: Readonly<WebhookOptions>;
  readonly #all: boolean;
  readonly #types: ReadonlySet<string>;

  constructor(options: Readonly<WebhookOptions>) {
    this.#options = options;
    this.id = `webhook:${createHash('sha256').update(options.url).digest('base64url').slice(0, 16)}`;
    this.#all = options.events?.includes('*') ?? false;
    this.#types = new Set(options.events ?? []);
  }

  wants(type: string): boolean {
    if (this.#all) return true;
    return this.#options.events === undefined ? type.startsWith('token.') : this.#types.has(type);
  }

  /** Posts one event; the same delivery id on every attempt, a fresh signature each time. */
  async post(delivery: string, type: string, fields: Record<string, unknown>): Promise<void> {
    const body = JSON.stringify({ id: delivery, type, event: fields });
    let response: Response;
    try {
      response = await fetch(this.#options.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'express-api-tokens-webhook',
          [SIGNATURE_HEADER]: signWebhook(this.#options.secret, body),
          [DELIVERY_HEADER]: delivery,
          [EVENT_HEADER]: type,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new Error(`Webhook ${this.id} could not be reached: ${(err as Error).message}`, { cause: err });
    }
    await response.body?.cancel();
    if (response.ok) return;
    const status = response.status;
    const message = `Webhook ${this.id} answered ${status}`;
    // Worth another try: the receiver is busy or broken for now. Anything else will not change.
    if (status === 408 || status === 429 || status >= 500) throw new Error(message);
    throw new PermanentFailure(message);
  }
}

/** A fresh delivery id. */
export const newDeliveryId = (): string => randomUUID();
