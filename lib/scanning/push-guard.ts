import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import type { NextFunction, Request, Response } from 'express';
import { PackScanner } from './pack-scanner.js';

/** What the caller makes of a scanned push: let it through, or answer it (the refusal). */
export type PushVerdict = { pass: true } | { pass: false; answer(res: Response): void };

export interface PushGuardOptions {
  /** Token prefix to look for. */
  prefix: string;
  /** Where the pushed bytes wait while they are judged. */
  tempDir: string;
  /** Hears each distinct token as soon as it is found. */
  onToken(token: string): void;
  /** Judges the whole push once it is in (`error`: it could not be read). */
  judge(scanner: PackScanner, error: Error | undefined): Promise<PushVerdict>;
}

const READ_SIZE = 1 << 16;
type Push = (chunk: unknown, encoding?: BufferEncoding) => boolean;

/**
 * Holds a push (the body of `POST …/git-receive-pack`) on disk while it is scanned, then either
 * replays it byte for byte into `req` for whatever proxy comes next (`next()`), or answers it
 * without the proxy ever running: nothing of a refused push reaches the upstream.
 *
 * It works on any Node.js `IncomingMessage`: the HTTP parser hands the body to `req.push()`,
 * which is taken over until the push is judged; the proxy then reads `req` as it would have,
 * through `req._read()`, from the file. Memory stays bounded: bytes go to the file and through
 * the scanner as they arrive, with backpressure on the socket.
 */
export function guardPush(req: Request, res: Response, next: NextFunction, options: PushGuardOptions): void {
  const file = join(options.tempDir, `express-api-tokens-push-${randomUUID()}.pack`);
  const spool: WriteStream = createWriteStream(file, { mode: 0o600 });
  const scanner = new PackScanner(options.prefix, options.onToken);
  let scanError: Error | undefined;
  const failScan = (err: Error) => {
    scanError ??= err;
  };
  scanner.on('error', failScan);
  let input: Writable = scanner;
  const encoding = String(req.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase();
  if (encoding === 'gzip' || encoding === 'x-gzip' || encoding === 'deflate') {
    input = encoding === 'deflate' ? createInflate() : createGunzip();
    input.on('error', failScan);
    input.pipe(scanner);
  } else if (encoding !== 'identity') {
    failScan(new Error(`Content-Encoding ${encoding} cannot be read`));
  }

  let settled = false;
  let spoolError: Error | undefined;
  spool.on('error', (err) => {
    spoolError ??= err;
  });
  const realPush = IncomingMessage.prototype.push as Push;
  const alreadyEnded = req.complete;
  // Bytes the parser delivered before we were called (the token check took time).
  const early = req.readableLength > 0 ? (req.read(req.readableLength) as Buffer | null) : null;

  const resumeSocket = () => {
    if (!spool.writableNeedDrain && !input.writableNeedDrain && req.socket?.readable) req.socket.resume();
  };
  spool.on('drain', resumeSocket);
  input.on('drain', resumeSocket);

  /** A body chunk from the parser: to the file and the scanner; false pauses the socket. */
  const intake = (chunk: Buffer): boolean => {
    let flowing = true;
    if (spoolError === undefined && !spool.write(chunk)) flowing = false;
    if (scanError === undefined && !input.destroyed && !input.write(chunk)) flowing = false;
    return flowing;
  };

  let refused = false;
  const takeOver: Push = (chunk) => {
    if (refused) {
      // Answered already: the rest of the body is read and dropped, so git sees the answer.
      if (chunk === null) {
        req.push = realPush;
        realPush.call(req, null);
      }
      return true;
    }
    if (chunk === null) {
      bodyComplete();
      return false;
    }
    return intake(chunk as Buffer);
  };
  req.push = takeOver;

  const cleanup = () => {
    spool.destroy();
    scanner.destroy();
    if (input !== scanner) input.destroy();
    unlink(file).catch(() => {});
  };
  // The client went away before the push was judged: nothing goes on. (A request a body parser
  // read to its end closes soon after whoever is still there; that says nothing.)
  const readByParser = req.readableEnded;
  req.once('close', () => {
    if (!settled && !readByParser) {
      settled = true;
      cleanup();
    }
  });

  const bodyComplete = () => {
    const spooled = new Promise<void>((resolve) => {
      spool.end(() => resolve());
      spool.once('error', () => resolve());
    });
    const scanned = new Promise<void>((resolve) => {
      if (scanError !== undefined || scanner.destroyed) {
        resolve();
        return;
      }
      scanner.once('finish', () => resolve());
      scanner.once('error', () => resolve());
      scanner.once('close', () => resolve());
      input.once('error', () => resolve());
      input.end();
    });
    Promise.all([spooled, scanned])
      .then(() => options.judge(scanner, scanError ?? spoolError))
      .then(
        (verdict) => decide(verdict),
        (err: unknown) => {
          if (settled) return;
          settled = true;
          cleanup();
          req.push = realPush;
          next(err);
        },
      );
  };

  const decide = (verdict: PushVerdict) => {
    if (settled) return;
    settled = true;
    if (!verdict.pass) {
      refused = true;
      cleanup();
      verdict.answer(res);
      req.resume();
      return;
    }
    scanner.destroy();
    req.push = realPush;
    if (alreadyEnded) {
      // The whole body was buffered before we were called: it goes back where it was.
      unlink(file).catch(() => {});
      if (early !== null) req.unshift(early);
      next();
      return;
    }
    replay(req, file, realPush);
    next();
  };

  if (early !== null) intake(early);
  else if (alreadyEnded) {
    // A body parser before us read the push: what goes on is `req.body`, so that is scanned.
    const parsed = req.body as unknown;
    if (Buffer.isBuffer(parsed) || typeof parsed === 'string') intake(Buffer.from(parsed));
    else if (!isNothing(parsed)) failScan(new Error('the push was read into an object before protect()'));
  }
  if (alreadyEnded) bodyComplete();
}

/** What body parsers leave when they read nothing (`{}` in Express 4, undefined in 5). */
function isNothing(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    (typeof body === 'object' &&
      Object.getPrototypeOf(body) === Object.prototype &&
      Object.keys(body).length === 0)
  );
}

/** Feeds `req` from the file as its reader asks for more, then ends it. */
function replay(req: Request, file: string, realPush: Push): void {
  // Open, then unlink at once: the data stays readable through the handle, and no name is
  // left behind whatever the proxy does (it may answer before it reads the body to its end).
  const handle = open(file, 'r').then(async (h) => {
    await unlink(file).catch(() => {});
    return h;
  });
  let position = 0;
  let done = false;
  let pumping = false;
  const finish = () => {
    if (done) return;
    done = true;
    handle.then((h) => h.close()).catch(() => {});
  };
  req.once('close', finish);
  // Reads on while the stream takes more; when it is full, its next `_read()` resumes.
  const pump = async () => {
    if (pumping || done) return;
    pumping = true;
    try {
      const h = await handle;
      for (;;) {
        const { bytesRead, buffer } = await h.read(Buffer.allocUnsafe(READ_SIZE), 0, READ_SIZE, position);
        if (done) return;
        position += bytesRead;
        if (bytesRead === 0) {
          finish();
          realPush.call(req, null);
          return;
        }
        if (!realPush.call(req, buffer.subarray(0, bytesRead))) return;
      }
    } catch (err) {
      finish();
      req.destroy(err as Error);
    } finally {
      pumping = false;
    }
  };
  req._read = () => {
    void pump();
  };
  // A read asked for while the push was held never got its answer, and the stream waits for it.
  void pump();
}
