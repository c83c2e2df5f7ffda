import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** An upstream answer held back before anything reached the client. */
export interface HeldAnswer {
  statusCode: number;
  /** The headers it would be sent with (set on the response plus those given to `writeHead`). */
  headers: Headers;
  body: Buffer;
}

/** Bodies larger than this are never held: they are not the short refusals we look for. */
const MAX_HELD_BYTES = 64 * 1024;

type Chunk = string | Uint8Array;
type Callback = (err?: Error | null) => void;

function toBuffer(chunk: Chunk, encoding?: unknown): Buffer {
  return typeof chunk === 'string'
    ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
    : Buffer.from(chunk);
}

function headersOf(res: ServerResponse, given: unknown): Headers {
  const headers = new Headers();
  const add = (name: string, value: unknown) => {
    if (value === undefined) return;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, String(v));
  };
  for (const [name, value] of Object.entries(res.getHeaders() as OutgoingHttpHeaders)) add(name, value);
  if (Array.isArray(given)) {
    // Raw form: [name, value, name, value, …] or [[name, value], …].
    if (Array.isArray(given[0])) for (const [name, value] of given as [string, unknown][]) add(name, value);
    else for (let i = 0; i + 1 < given.length; i += 2) add(String(given[i]), given[i + 1]);
  } else if (typeof given === 'object' && given !== null) {
    for (const [name, value] of Object.entries(given)) add(name, value);
  }
  return headers;
}

/**
 * Watches what a forwarder writes to `res` and holds back an answer with status `status`
 * (headers and a short body) until `judge` decides: `pass` sends it unchanged, `replace` drops
 * it (headers included) and calls `replace()`, which answers in its place. Any other status
 * streams through untouched and ends the watch at once. Works with any forwarder that writes
 * through `res.writeHead`/`res.write`/`res.end` (and `pipe`/`pipeline` into `res`).
 */
export function holdAnswer(
  res: ServerResponse,
  status: number,
  judge: (answer: HeldAnswer) => Promise<'pass' | 'replace'>,
  replace: () => void,
): void {
  const original = { writeHead: res.writeHead, write: res.write, end: res.end };
  const writeRaw = (chunk: Buffer) => (original.write as (chunk: Buffer) => boolean).call(res, chunk);
  const endRaw = (callback?: () => void) =>
    (original.end as (cb?: () => void) => ServerResponse).call(res, callback);
  let head: unknown[] | undefined;
  const chunks: Buffer[] = [];
  let size = 0;

  const restore = () => {
    res.writeHead = original.writeHead;
    res.write = original.write;
    res.end = original.end;
  };
  /** Sends the held head and body as they were, then lets the rest stream. */
  const release = () => {
    restore();
    original.writeHead.apply(res, (head ?? [res.statusCode]) as Parameters<ServerResponse['writeHead']>);
    for (const chunk of chunks.splice(0)) writeRaw(chunk);
  };
  const holding = () => head !== undefined;
  /** Before the status is known: a write or end implies it (`res.statusCode`). */
  const startsHolding = () => {
    if (holding()) return true;
    if (res.headersSent || res.statusCode !== status) {
      restore();
      return false;
    }
    head = [res.statusCode];
    return true;
  };

  res.writeHead = function heldWriteHead(this: ServerResponse, code: number, ...rest: unknown[]) {
    if (code !== status || holding()) {
      if (holding()) head = undefined;
      restore();
      return original.writeHead.apply(this, [code, ...rest] as Parameters<ServerResponse['writeHead']>);
    }
    head = [code, ...rest];
    return this;
  } as ServerResponse['writeHead'];

  res.write = function heldWrite(this: ServerResponse, chunk: Chunk, encoding?: unknown, callback?: unknown) {
    if (!startsHolding()) return original.write.apply(this, [chunk, encoding, callback] as never);
    const buffer = toBuffer(chunk, encoding);
    chunks.push(buffer);
    size += buffer.length;
    const done = typeof encoding === 'function' ? encoding : callback;
    if (size > MAX_HELD_BYTES) release();
    if (typeof done === 'function') process.nextTick(done as Callback);
    return true;
  } as ServerResponse['write'];

  res.end = function heldEnd(
    this: ServerResponse,
    chunk?: unknown,
    encoding?: unknown,
    callback?: unknown,
  ): ServerResponse {
    if (typeof chunk === 'function') return heldEnd.call(this, undefined, undefined, chunk);
    if (typeof encoding === 'function') return heldEnd.call(this, chunk, undefined, encoding);
    if (!startsHolding()) return original.end.apply(this, [chunk, encoding, callback] as never);
    if (chunk !== undefined && chunk !== null) chunks.push(toBuffer(chunk as Chunk, encoding));
    const answer: HeldAnswer = {
      statusCode: head![0] as number,
      headers: headersOf(res, typeof head![1] === 'string' ? head![2] : head![1]),
      body: Buffer.concat(chunks),
    };
    const finish = (verdict: 'pass' | 'replace') => {
      if (verdict === 'replace' && !res.headersSent) {
        chunks.length = 0;
        restore();
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        if (typeof callback === 'function') res.once('finish', callback as () => void);
        replace();
      } else {
        release();
        endRaw(callback as (() => void) | undefined);
      }
    };
    judge(answer).then(finish, () => finish('pass'));
    return this;
  } as ServerResponse['end'];
}
