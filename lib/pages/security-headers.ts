import { randomBytes } from 'node:crypto';
import type { Response } from 'express';

/** A fresh nonce for one page's script and stylesheet tags. */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

/**
 * Headers of every page: a strict CSP (only our own script and stylesheet tags, by nonce; no
 * framing; forms post only to us), no referrer (token ids in paths stay here), no sniffing,
 * and no caching (the pages show tokens and their use).
 */
export function setPageHeaders(res: Response, nonce: string): void {
  res.setHeader(
    'Content-Security-Policy',
    [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "img-src 'self' data:",
      "connect-src 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
  );
  setCommonHeaders(res);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=()');
}

/** Headers of everything the pages answer, assets included. */
export function setCommonHeaders(res: Response): void {
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}
