import {
  array,
  either,
  fail,
  func,
  integer,
  object,
  record,
  type Shape,
  string,
} from '../internal/options.js';

/** Who gets an e-mail about an event: the token's owner, the administrators (`email.admins`). */
export type Recipient = 'owner' | 'admins';

/**
 * Retries of a sink: exponential backoff with jitter.
 * @example const retry: NotifyRetryOptions = { attempts: 8, firstDelayMs: 10_000 };
 */
export interface NotifyRetryOptions {
  /** Attempts in all, the first included. Default 5. */
  attempts?: number;
  /** Wait before the first retry; each next one doubles (up to 10 minutes). Default 30,000 ms. */
  firstDelayMs?: number;
}

/**
 * E-mail to owners and administrators, through nodemailer over SMTP (an optional peer:
 * `npm install nodemailer`; loaded only when this option is set).
 * @example
 * const email: EmailNotifyOptions = {
 *   smtp: 'smtp://mail.example.com:587',
 *   from: 'Bitbucket tokens <tokens@example.com>',
 *   emailOf: bitbucketEmails({ baseUrl, token: process.env.BITBUCKET_ADMIN_TOKEN! }),
 *   admins: ['security@example.com'],
 *   pagesUrl: 'https://git.example.com/tokens/',
 * };
 */
export interface EmailNotifyOptions {
  /** nodemailer's SMTP transport: an `smtp://` / `smtps://` URL or its options object. */
  smtp: string | Readonly<Record<string, unknown>>;
  /** The sender, e.g. `'Bitbucket tokens <tokens@example.com>'`. */
  from: string;
  /**
   * A user's e-mail address (or undefined when there is none): your directory, or
   * `bitbucketEmails({ baseUrl, token })` to ask Bitbucket.
   */
  emailOf: (user: string) => string | undefined | null | Promise<string | undefined | null>;
  /** Addresses of the administrators (for `token.leaked`). Default: none. */
  admins?: readonly string[];
  /**
   * Where the token pages are (what `gate.pages()` is mounted at, as users reach it), for the
   * link to renew a token in `token.expiring` e-mails. Default: no link.
   */
  pagesUrl?: string;
  /**
   * Which events are e-mailed, to whom. Types other features add slot in by name.
   * Default `{ 'token.expiring': ['owner'], 'token.leaked': ['owner', 'admins'] }`.
   */
  events?: Readonly<Record<string, readonly Recipient[]>>;
  /** Most e-mails waiting; more are dropped (and counted). Default 1,000. */
  maxQueued?: number;
  /** Retries of a failed e-mail. Default 5 attempts, the first retry after 30 s. */
  retry?: NotifyRetryOptions;
}

/**
 * A signed webhook: each event is POSTed as JSON with an HMAC-SHA256 signature header
 * (`API-Tokens-Signature: t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">`).
 * @example
 * const webhook: WebhookOptions = {
 *   url: 'https://hooks.example.com/api-tokens',
 *   secret: process.env.WEBHOOK_SECRET!, // at least 32 bytes, shared with the receiver
 *   events: ['token.leaked', 'token.expiring', 'token.revoked'],
 * };
 */
export interface WebhookOptions {
  /** Where events are POSTed: an http(s) URL. */
  url: string;
  /** The HMAC key the receiver checks signatures with: at least 32 bytes. */
  secret: string | Buffer;
  /** Event types sent (`'*'` for all). Default: every `token.*` event. */
  events?: readonly string[];
  /** Deadline of one attempt. Default 10,000 ms. */
  timeoutMs?: number;
  /** Most deliveries waiting; more are dropped (and counted). Default 1,000. */
  maxQueued?: number;
  /** Retries of a failed delivery (network error, 408, 429, 5xx). Default 5 attempts, the first retry after 30 s. */
  retry?: NotifyRetryOptions;
}

/**
 * Who is told about audit events besides `onEvent`: e-mail and signed webhooks. Each event is
 * delivered once per fleet (claimed in the store), in the background (a request never waits),
 * and never with a secret.
 * @example
 * createTokenGate({
 *   store,
 *   notify: {
 *     email: { smtp: 'smtp://mail.example.com:587', from: 'tokens@example.com', emailOf },
 *     webhooks: [{ url: 'https://hooks.example.com/api-tokens', secret: process.env.WEBHOOK_SECRET! }],
 *   },
 * });
 */
export interface NotifyOptions {
  /** E-mail to owners and administrators. Default: none. */
  email?: EmailNotifyOptions;
  /** Signed webhooks. Default: none. */
  webhooks?: readonly WebhookOptions[];
  /** Told of a delivery given up after its retries (never with a secret). Default: none. */
  onError?: (error: Error) => void;
}

const RETRY: Shape<NotifyRetryOptions> = {
  attempts: integer(1, 50),
  firstDelayMs: integer(1, 3_600_000),
};

const httpUrl = (value: unknown, path: string) => {
  let url: URL | undefined;
  try {
    url = new URL(String(value));
  } catch {
    // refused below
  }
  if (
    typeof value !== 'string' ||
    url === undefined ||
    (url.protocol !== 'http:' && url.protocol !== 'https:')
  )
    fail(path, 'must be an http(s) URL');
};

const secret = (value: unknown, path: string) => {
  const length =
    typeof value === 'string' ? Buffer.byteLength(value) : Buffer.isBuffer(value) ? value.length : -1;
  if (length < 32) fail(path, 'must be a string or Buffer of at least 32 bytes');
};

const recipients = array((value: unknown, path: string) => {
  if (value !== 'owner' && value !== 'admins') fail(path, "must be 'owner' or 'admins'");
});

const EMAIL: Shape<EmailNotifyOptions> = {
  smtp: either(string({ pattern: /^smtps?:\/\// }), (value, path) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      fail(path, "must be an smtp:// URL or nodemailer's SMTP options");
  }),
  from: string({ minLength: 3 }),
  emailOf: func,
  admins: array(string({ pattern: /^[^\s@]+@[^\s@]+$/ })),
  pagesUrl: httpUrl,
  events: record(recipients),
  maxQueued: integer(1, 1_000_000),
  retry: object(RETRY),
};

const WEBHOOK: Shape<WebhookOptions> = {
  url: httpUrl,
  secret,
  events: array(string({ minLength: 1 })),
  timeoutMs: integer(1, 300_000),
  maxQueued: integer(1, 1_000_000),
  retry: object(RETRY),
};

export const NOTIFY_OPTIONS: Shape<NotifyOptions> = {
  email: (value, path) => {
    object(EMAIL)(value, path);
    for (const key of ['smtp', 'from', 'emailOf'] as const)
      if ((value as Record<string, unknown>)[key] === undefined) fail(`${path}.${key}`, 'is required');
  },
  webhooks: array((value, path) => {
    object(WEBHOOK)(value, path);
    for (const key of ['url', 'secret'] as const)
      if ((value as Record<string, unknown>)[key] === undefined) fail(`${path}.${key}`, 'is required');
  }),
  onError: func,
};
