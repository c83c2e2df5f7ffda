import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { Redis } from 'ioredis';
import { SMTPServer } from 'smtp-server';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent } from '../../lib/events.js';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { bitbucketEmails } from '../../lib/notify/bitbucket-emails.js';
import { Notifier } from '../../lib/notify/notifier.js';
import { MemoryTokenStore } from '../../lib/stores/memory-token-store.js';
import { makeRecord } from '../../lib/testing/index.js';
import { openRedisStore } from '../support/redis-store.js';

interface Mail {
  to: string[];
  raw: string;
}

/** A real SMTP server on a free port, collecting what it receives. */
async function smtpReceiver() {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, done) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        done();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    mails,
    smtp: { host: '127.0.0.1', port, secure: false, ignoreTLS: true },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A real HTTP receiver: answers each delivery with the next status of `statuses` (then 200). */
async function webhookReceiver(statuses: number[] = [], delayMs = 0) {
  const received: Array<{ headers: IncomingMessage['headers']; body: string; at: number }> = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      setTimeout(() => {
        res.writeHead(statuses.shift() ?? 200);
        res.end();
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    received,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const SECRET = 'webhook-secret-of-at-least-32-bytes!!';

function validSignature(header: string, body: string): boolean {
  const [t, v1] = header.split(',').map((part) => part.slice(part.indexOf('=') + 1)) as [string, string];
  const expected = createHmac('sha256', SECRET).update(`${t}.${body}`).digest('hex');
  return (
    Math.abs(Date.now() / 1000 - Number(t)) < 300 && timingSafeEqual(Buffer.from(v1), Buffer.from(expected))
  );
}

/** The Subject header, RFC 2047 Q-encoded words decoded. */
function subjectOf(raw: string): string {
  const header = /^Subject: (.*(?:\r?\n[ \t].*)*)/m.exec(raw)?.[1] ?? '';
  return header
    .replace(/\?=\r?\n[ \t]+=\?/g, '?==?')
    .replace(/=\?UTF-8\?Q\?(.*?)\?=/gi, (_m, text: string) =>
      Buffer.from(
        text
          .replace(/_/g, ' ')
          .replace(/=([0-9A-F]{2})/gi, (_x, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
        'latin1',
      ).toString('utf8'),
    )
    .trim();
}

async function until(done: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await sleep(25);
}

describe('e-mail reminders across two instances sharing Redis', () => {
  let smtp: Awaited<ReturnType<typeof smtpReceiver>>;
  let redis: Awaited<ReturnType<typeof openRedisStore>>;
  const gates: TokenGate[] = [];
  beforeAll(async () => {
    smtp = await smtpReceiver();
    redis = await openRedisStore(new Redis(inject('redisUrl')));
  });
  afterAll(async () => {
    for (const gate of gates) await gate.close();
    await redis?.cleanup();
    await smtp?.close();
  });

  it('sends one reminder e-mail per token and lead day, to the owner, with a link to renew and no secret', async () => {
    for (const store of [redis.store, redis.peer])
      gates.push(
        createTokenGate({
          store,
          reminders: { leadDays: [7, 1], intervalMs: 1_000 },
          notify: {
            email: {
              smtp: smtp.smtp,
              from: 'Tokens <tokens@example.com>',
              emailOf: (user) => `${user}@example.com`,
              pagesUrl: 'https://git.example.com/tokens',
            },
          },
        }),
      );
    // Tokens made a month ago (a token created inside a lead time gets no reminder for it).
    const day = 86_400_000;
    const old = { createdAt: Date.now() - 30 * day };
    const tomorrow = makeRecord({ ...old, user: 'alice', name: 'nightly', expiresAt: Date.now() + day / 2 });
    const nextWeek = makeRecord({ ...old, user: 'alice', name: 'deploy', expiresAt: Date.now() + 6.5 * day });
    const bobs = makeRecord({ ...old, user: 'bob', name: 'ci', expiresAt: Date.now() + day / 2 });
    for (const record of [tomorrow, nextWeek, bobs]) await redis.store.put(record);
    await until(() => smtp.mails.length >= 3);
    // Both instances ran several ticks meanwhile; nothing more arrives.
    await sleep(2_500);
    expect(smtp.mails).toHaveLength(3);
    const alice = smtp.mails.filter((m) => m.to.includes('alice@example.com'));
    expect(alice.map((m) => subjectOf(m.raw)).sort()).toEqual([
      'Your API token "deploy" expires in 7 days',
      'Your API token "nightly" expires in 1 day',
    ]);
    for (const [mail, record] of [
      [alice.find((m) => subjectOf(m.raw).includes('nightly'))!, tomorrow],
      [alice.find((m) => subjectOf(m.raw).includes('deploy'))!, nextWeek],
    ] as const) {
      const text = mail.raw.replace(/=\r?\n/g, '');
      expect(text).toContain(`https://git.example.com/tokens/token/${record.id}`);
      expect(text).not.toContain(record.hash.slice(12));
    }
    expect(smtp.mails.filter((m) => m.to.includes('bob@example.com'))).toHaveLength(1);
  });
});

describe('the notifier with event types other features add', () => {
  it('mails token.leaked to the owner and the administrators once per fleet, whichever instances report it', async () => {
    const smtp = await smtpReceiver();
    const { store, peer, cleanup } = await openRedisStore(new Redis(inject('redisUrl')));
    const email = {
      smtp: smtp.smtp,
      from: 'tokens@example.com',
      emailOf: (user: string) => (user === 'carol' ? 'carol@example.com' : undefined),
      admins: ['security@example.com'],
      retry: { firstDelayMs: 20 },
    };
    const notifiers = [new Notifier({ email }, store, 'bbt'), new Notifier({ email }, peer, 'bbt')];
    try {
      const leaked = {
        type: 'token.leaked',
        time: new Date().toISOString(),
        clientIp: null,
        tokenId: 'a1B2c3D4e5F',
        user: 'carol',
        name: 'ci',
        location: 'pushed to OPS/deploy in bbt_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123',
        token: 'bbt_a1B2c3D4e5FABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh',
      } as unknown as AuditEvent;
      for (const notifier of notifiers) notifier.listener(leaked);
      await Promise.all(notifiers.map((n) => n.idle()));
      await until(() => smtp.mails.length >= 2);
      await sleep(200);
      expect(smtp.mails.map((m) => m.to).sort()).toEqual([['carol@example.com'], ['security@example.com']]);
      for (const mail of smtp.mails) {
        expect(subjectOf(mail.raw)).toBe('API token "ci" of carol was found exposed');
        expect(mail.raw).not.toContain('ABCDEFGHIJKLMNOPQRSTUVWXYZ');
        expect(mail.raw).toContain('[redacted]');
      }
    } finally {
      for (const notifier of notifiers) notifier.close();
      await cleanup();
      await smtp.close();
    }
  });
});

describe('signed webhooks', () => {
  it('signs each delivery, retries a failing receiver with backoff under one delivery id, and never sends a secret', async () => {
    const receiver = await webhookReceiver([500, 503]);
    const errors: Error[] = [];
    const gate = createTokenGate({
      notify: {
        webhooks: [{ url: receiver.url, secret: SECRET, retry: { attempts: 4, firstDelayMs: 100 } }],
        onError: (e) => errors.push(e),
      },
      metrics: true,
    });
    try {
      const { token, info } = await gate.tokens.create({ user: 'dave', name: 'ci', scope: 'write' });
      await until(() => receiver.received.length >= 3);
      expect(receiver.received).toHaveLength(3);
      const ids = new Set(receiver.received.map((r) => r.headers['api-tokens-delivery']));
      expect(ids.size).toBe(1);
      for (const { headers, body } of receiver.received) {
        expect(headers['api-tokens-event']).toBe('token.created');
        expect(validSignature(String(headers['api-tokens-signature']), body)).toBe(true);
        expect(validSignature(String(headers['api-tokens-signature']), `${body} `)).toBe(false);
        expect(body).not.toContain(token.slice(4));
        expect(JSON.parse(body)).toMatchObject({
          id: [...ids][0],
          type: 'token.created',
          event: { type: 'token.created', tokenId: info.id, user: 'dave', name: 'ci', scope: 'write' },
        });
      }
      // Backoff: the second retry waited about twice as long as the first.
      const [a, b, c] = receiver.received.map((r) => r.at) as [number, number, number];
      expect(b - a).toBeGreaterThanOrEqual(100);
      expect(c - b).toBeGreaterThanOrEqual(200);
      expect(errors).toEqual([]);
      const metrics = express();
      metrics.get('/metrics', gate.metricsHandler());
      const text = (await supertest(metrics).get('/metrics')).text;
      expect(text).toMatch(/express_api_tokens_notifications_total\{outcome="delivered"\} 1/);
    } finally {
      await gate.close();
      await receiver.close();
    }
  });

  it('gives up at once on a 4xx, telling onError without a secret', async () => {
    const receiver = await webhookReceiver([400]);
    const errors: Error[] = [];
    const gate = createTokenGate({
      notify: {
        webhooks: [{ url: receiver.url, secret: SECRET, retry: { firstDelayMs: 10 } }],
        onError: (e) => errors.push(e),
      },
    });
    try {
      await gate.tokens.create({ user: 'erin', name: 'ci', scope: 'read' });
      await until(() => errors.length > 0);
      await sleep(100);
      expect(receiver.received).toHaveLength(1);
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/^Webhook webhook:\S+ answered 400$/),
      ]);
    } finally {
      await gate.close();
      await receiver.close();
    }
  });

  it('never blocks: a slow receiver fills a bounded queue, and events past it are dropped', async () => {
    const receiver = await webhookReceiver([], 2_000);
    const notifier = new Notifier(
      { webhooks: [{ url: receiver.url, secret: SECRET, maxQueued: 3, events: ['*'] }] },
      new MemoryTokenStore(),
      'bbt',
    );
    try {
      const started = performance.now();
      for (let i = 0; i < 100; i++)
        notifier.listener({
          type: 'token.revoked',
          time: new Date().toISOString(),
          clientIp: null,
          actor: 'x',
          user: 'x',
          tokenId: `a1B2c3D4e${String(i).padStart(2, '0')}`,
          name: 'x',
        });
      expect(performance.now() - started).toBeLessThan(50);
      expect(notifier.stats.dropped).toBe(97);
    } finally {
      notifier.close();
      await receiver.close();
    }
  });

  it('refuses bad options at startup, naming them', () => {
    expect(() =>
      createTokenGate({ notify: { webhooks: [{ url: 'https://x.example', secret: 'short' }] } }),
    ).toThrow(/`notify.webhooks\[0\].secret` must be a string or Buffer of at least 32 bytes/);
    expect(() =>
      createTokenGate({ notify: { email: { smtp: 'smtp://x', from: 'a@b.c' } as never } }),
    ).toThrow(/`notify.email.emailOf` is required/);
    expect(() => createTokenGate({ notify: { webhook: [] } as never })).toThrow(/webhooks/);
  });
});

describe('bitbucketEmails', () => {
  it('finds the address of the user whose name matches, from Bitbucket’s user API, and remembers it', async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.url} ${req.headers.authorization}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          values: [
            { name: 'alice2', emailAddress: 'other@example.com' },
            { name: 'Alice', emailAddress: 'alice@example.com' },
          ],
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const emailOf = bitbucketEmails({
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        token: 'admin-token',
      });
      expect(await emailOf('alice')).toBe('alice@example.com');
      expect(await emailOf('ALICE')).toBe('alice@example.com');
      expect(seen).toEqual(['/rest/api/1.0/users?filter=alice&limit=100 Bearer admin-token']);
      expect(await emailOf('nobody')).toBeUndefined();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
