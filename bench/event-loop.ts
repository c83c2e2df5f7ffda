/**
 * Event-loop delay while bcrypt works: a gate serving cached token requests while 50 tokens it
 * has never seen are verified at once, with bcrypt on the main thread (`threads: 0`, how 0.1
 * ran it) and in the worker pool (the default). Prints p50/p99/max of the event-loop delay
 * during the burst. Run through `npm run bench` or alone:
 *   node --import tsx bench/event-loop.ts
 */
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import express from 'express';
import request from 'supertest';
import { library } from './load-library.js';

const { bcryptHasher, createTokenGate } = library;

export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
  burstMs: number;
}

export async function loopDelayDuringBcrypt(threads: number): Promise<LoopDelay> {
  const hasher = bcryptHasher({ cost: 10, threads });
  const gate = createTokenGate({ hasher, throttle: false });
  const app = express();
  app.use(gate.protect());
  app.get('/rest/x', (_req, res) => {
    res.json({ ok: true });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const warm = (await gate.tokens.create({ user: 'warm', name: 'x', scope: 'read' })).token;
    await request(url).get('/rest/x').set('Authorization', `Bearer ${warm}`);
    const fresh = await Promise.all(
      Array.from({ length: 50 }, (_, i) => gate.tokens.create({ user: `u${i}`, name: 'x', scope: 'read' })),
    );
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    const started = Date.now();
    const burst = Promise.all(
      fresh.map(({ token }) => request(url).get('/rest/x').set('Authorization', `Bearer ${token}`)),
    );
    // Ordinary traffic meanwhile: cached requests, one after another.
    let done = false;
    void burst.then(() => {
      done = true;
    });
    while (!done) await request(url).get('/rest/x').set('Authorization', `Bearer ${warm}`);
    const burstMs = Date.now() - started;
    histogram.disable();
    const ms = (ns: number) => ns / 1e6;
    return {
      p50: ms(histogram.percentile(50)),
      p99: ms(histogram.percentile(99)),
      max: ms(histogram.max),
      burstMs,
    };
  } finally {
    server.close();
    await gate.close();
    await hasher.close?.();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const threads of [0, 2]) {
    const delay = await loopDelayDuringBcrypt(threads);
    console.log(
      `bcrypt ${threads === 0 ? 'on the main thread' : `in ${threads} worker threads`}: event-loop delay p50 ${delay.p50.toFixed(1)} ms, p99 ${delay.p99.toFixed(1)} ms, max ${delay.max.toFixed(1)} ms; 50 first checks took ${delay.burstMs} ms`,
    );
  }
}
