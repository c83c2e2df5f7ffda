import { requireOptional } from '../internal/optional-module.js';
import type { EmailNotifyOptions, Recipient } from './options.js';

/** The part of a nodemailer transport the sink uses. */
interface MailTransport {
  sendMail(message: { from: string; to: string; subject: string; text: string }): Promise<unknown>;
  close(): void;
}

const DEFAULT_EVENTS: Readonly<Record<string, readonly Recipient[]>> = {
  'token.expiring': ['owner'],
  'token.leaked': ['owner', 'admins'],
};

/**
 * E-mail through nodemailer over SMTP. nodemailer is an optional peer: it is loaded here, when
 * a gate is configured with `notify.email`, never by the package's root import.
 */
export class EmailSink {
  readonly id = 'email';
  readonly #options: Readonly<EmailNotifyOptions>;
  readonly #events: Readonly<Record<string, readonly Recipient[]>>;
  readonly #transport: MailTransport;

  constructor(options: Readonly<EmailNotifyOptions>) {
    this.#options = options;
    this.#events = options.events ?? DEFAULT_EVENTS;
    const nodemailer = requireOptional<{ createTransport(options: unknown): MailTransport }>(
      'nodemailer',
      '`notify.email`',
    );
    this.#transport = nodemailer.createTransport(options.smtp);
  }

  wants(type: string): boolean {
    return Object.hasOwn(this.#events, type);
  }

  /** The addresses an event goes to: the owner's (looked up) and the administrators', each once. */
  async recipients(type: string, user: string | undefined): Promise<string[]> {
    const who = this.#events[type] ?? [];
    const addresses = new Set<string>();
    if (who.includes('owner') && user !== undefined) {
      const address = await this.#options.emailOf(user);
      if (typeof address === 'string' && address !== '') addresses.add(address);
    }
    if (who.includes('admins')) for (const admin of this.#options.admins ?? []) addresses.add(admin);
    return [...addresses];
  }

  /** The token page of a token, for renewing it, when `pagesUrl` is set. */
  renewUrl(tokenId: unknown): string | undefined {
    const base = this.#options.pagesUrl;
    if (base === undefined || typeof tokenId !== 'string') return undefined;
    return new URL(`token/${encodeURIComponent(tokenId)}`, base.endsWith('/') ? base : `${base}/`).href;
  }

  async send(to: string, subject: string, text: string): Promise<void> {
    await this.#transport.sendMail({ from: this.#options.from, to, subject, text });
  }

  close(): void {
    this.#transport.close();
  }
}
