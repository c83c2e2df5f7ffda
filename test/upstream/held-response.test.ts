import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import express, { type RequestHandler } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { type HeldAnswer, holdAnswer } from '../../lib/upstream/held-response.js';

/** Forwarders write responses in different ways; each must be held and released intact. */
const FORWARDERS: Array<[string, (status: number, body: Buffer) => RequestHandler]> = [
  [
    'writeHead with headers, then a piped body',
    (status, body) => (_req, res) => {
      res.writeHead(status, { 'Content-Type': 'text/plain', 'X-Upstream': 'yes' });
      void pipeline(Readable.from([body.subarray(0, 3), body.subarray(3)]), res);
    },
  ],
  [
    'setHeader and statusCode, then write and end (implicit head)',
    (status, body) => (_req, res) => {
      res.statusCode = status;
      res.setHeader('Content-Type', 'text/plain');
      res.setHeader('X-Upstream', 'yes');
      res.write(body.subarray(0, 3));
      res.end(body.subarray(3));
    },
  ],
  [
    'Express res.status().send()',
    (status, body) => (_req, res) => {
      res.status(status).set('X-Upstream', 'yes').type('text/plain').send(body);
    },
  ],
];

function app(forward: RequestHandler, verdict: 'pass' | 'replace', seen: HeldAnswer[] = []) {
  const server = express();
  server.use((_req, res, next) => {
    holdAnswer(
      res,
      401,
      async (answer) => {
        seen.push(answer);
        await new Promise((r) => setTimeout(r, 10));
        return verdict;
      },
      () => {
        res.status(401).json({ replaced: true });
      },
    );
    next();
  });
  server.use(forward);
  return server;
}

describe.each(FORWARDERS)('holdAnswer with a forwarder using %s', (_name, forwarder) => {
  const body = Buffer.from('Authentication failed.\n');

  it('lets other statuses stream through untouched', async () => {
    const seen: HeldAnswer[] = [];
    const res = await request(app(forwarder(200, body), 'replace', seen)).get('/');
    expect(res.status).toBe(200);
    expect(res.text).toBe(body.toString());
    expect(res.headers['x-upstream']).toBe('yes');
    expect(seen).toEqual([]);
  });

  it('holds the 401 and sends it unchanged when judged to pass', async () => {
    const seen: HeldAnswer[] = [];
    const res = await request(app(forwarder(401, body), 'pass', seen)).get('/');
    expect(res.status).toBe(401);
    expect(res.text).toBe(body.toString());
    expect(res.headers['x-upstream']).toBe('yes');
    expect(seen[0]!.body.toString()).toBe(body.toString());
    expect(seen[0]!.headers.get('x-upstream')).toBe('yes');
  });

  it('drops the 401, headers and all, when judged to be replaced', async () => {
    const res = await request(app(forwarder(401, body), 'replace')).get('/');
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ replaced: true });
    expect(res.headers['x-upstream']).toBeUndefined();
  });
});

it('never holds a large body: it streams as it comes', async () => {
  const big = randomBytes(200 * 1024);
  const seen: HeldAnswer[] = [];
  const res = await request(app(FORWARDERS[0]![1](401, big), 'replace', seen))
    .get('/')
    .buffer(true)
    .parse((response, done) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () => done(null, Buffer.concat(chunks)));
    });
  expect(res.status).toBe(401);
  expect(Buffer.compare(res.body as Buffer, big)).toBe(0);
  expect(seen).toEqual([]);
});
