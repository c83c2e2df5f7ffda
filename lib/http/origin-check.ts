import type { Request } from 'express';

/**
 * Whether a state-changing request comes from our own pages. Browsers tell with
 * `Sec-Fetch-Site`; where it is missing, `Origin` must name us. `Origin: null` is what Chromium
 * sends for a same-origin form post under `Referrer-Policy: no-referrer`, so it proves nothing
 * either way: it passes only with `Sec-Fetch-Site: same-origin`. A request with neither header
 * (not a browser, or a very old one) is left to the CSRF token, which every form carries.
 */
export function fromOwnPages(req: Request, expectedOrigin: string | undefined): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (origin === 'null') return site === 'same-origin';
  if (expectedOrigin !== undefined) return origin === expectedOrigin;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
