import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { setCommonHeaders } from '../security-headers.js';
import { SCRIPT } from './script.js';
import { STYLES } from './styles.js';

interface Asset {
  /** File name with a content hash, so it can be cached for good. */
  file: string;
  type: string;
  body: Buffer;
}

function asset(name: string, ext: string, type: string, text: string): Asset {
  const body = Buffer.from(text);
  const hash = createHash('sha256').update(body).digest('base64url').slice(0, 10);
  return { file: `${name}.${hash}.${ext}`, type, body };
}

/** The stylesheet and the script, under content-hashed names. */
export const ASSETS = {
  styles: asset('pages', 'css', 'text/css; charset=utf-8', STYLES),
  script: asset('pages', 'js', 'text/javascript; charset=utf-8', SCRIPT),
};

const byFile = new Map(Object.values(ASSETS).map((a) => [a.file, a]));

/** Serves `assets/<file>`; false when no such asset (the router answers 404). */
export function serveAsset(req: Request, res: Response, file: string): boolean {
  const found = byFile.get(file);
  if (found === undefined) return false;
  setCommonHeaders(res);
  res.setHeader('Content-Type', found.type);
  res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
  res.setHeader('Content-Length', String(found.body.length));
  res.status(200).end(req.method === 'HEAD' ? undefined : found.body);
  return true;
}
