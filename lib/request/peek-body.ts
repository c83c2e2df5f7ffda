import type { IncomingMessage } from 'node:http';

/**
 * Reads a small request body and puts it back, so a proxy after us still streams it whole.
 * Only bodies with a Content-Length up to `limit` are read; anything else resolves null
 * (the caller then assumes the worst).
 */
export function peekBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const lengthHeader = req.headers['content-length'];
  const length = lengthHeader === undefined || !/^\d{1,9}$/.test(lengthHeader) ? -1 : Number(lengthHeader);
  if (length < 0 || length > limit || req.headers['transfer-encoding'] !== undefined || req.readableEnded) {
    return Promise.resolve(null);
  }
  if (length === 0) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (body: Buffer | null) => {
      req.off('readable', onReadable);
      req.off('end', onEnd);
      req.off('error', onEnd);
      req.off('close', onEnd);
      resolve(body);
    };
    const onReadable = () => {
      while (size < length) {
        const chunk = req.read() as Buffer | null;
        if (chunk === null) break;
        chunks.push(chunk);
        size += chunk.length;
      }
      if (size >= length) {
        const body = Buffer.concat(chunks);
        req.unshift(body);
        finish(body);
      }
    };
    const onEnd = () => finish(null);
    req.on('readable', onReadable);
    req.on('end', onEnd);
    req.on('error', onEnd);
    req.on('close', onEnd);
  });
}
