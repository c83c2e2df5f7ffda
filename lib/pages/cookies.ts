import type { Request, Response } from 'express';
import { HTTP_TOKEN } from '../internal/regexp.js';

/** Where and how a cookie of the pages is set. */
export interface CookieSettings {
  path: string;
  secure: boolean;
  sameSite: 'Lax' | 'Strict';
}

const COOKIE_NAME = HTTP_TOKEN;
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;
const COOKIE_PATH = /^\/[\x21-\x3A\x3C-\x7E]*$/;

export function isCookieName(name: string): boolean {
  return COOKIE_NAME.test(name);
}

/** A cookie's value from the request's `Cookie` header; the first of duplicates, as browsers order them most specific first. */
export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 16_384) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return COOKIE_VALUE.test(value) ? value : undefined;
  }
  return undefined;
}

/** A path a cookie can carry; anything odd (it came from a mount path) falls back to `/`. */
export function cookiePath(path: string): string {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return COOKIE_PATH.test(trimmed) ? trimmed : '/';
}

function serialize(name: string, value: string, settings: CookieSettings, maxAgeSeconds: number): string {
  if (!COOKIE_VALUE.test(value)) throw new TypeError('cookie value with characters a cookie cannot carry');
  return [
    `${name}=${value}`,
    `Path=${settings.path}`,
    `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`,
    'HttpOnly',
    `SameSite=${settings.sameSite}`,
    ...(settings.secure ? ['Secure'] : []),
  ].join('; ');
}

/** Sets an HttpOnly cookie (added to any `Set-Cookie` already on the response). */
export function setCookie(
  res: Response,
  name: string,
  value: string,
  settings: CookieSettings,
  maxAgeMs: number,
): void {
  res.append('Set-Cookie', serialize(name, value, settings, maxAgeMs / 1000));
}

export function clearCookie(res: Response, name: string, settings: CookieSettings): void {
  res.append('Set-Cookie', serialize(name, '', settings, 0));
}
