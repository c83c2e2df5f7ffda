import type { Request } from 'express';

/**
 * Header surgery on the way upstream, shared by the identity-header and access-token modes:
 * both must remove what the client may not send and set what only the gate may set, on
 * `req.headers` and `req.rawHeaders` alike (forwarders read one or the other).
 */

/** The identity header and JWT header of the identity-header mode, stripped in every mode. */
export const DEFAULT_IDENTITY_HEADER = 'x-forwarded-user';
export const DEFAULT_JWT_HEADER = 'x-forwarded-user-jwt';

/**
 * A test for header names that mean one of `names` to some upstream: any letter case, and `_`
 * for `-` (CGI-style servers and proxies that fold `_` into `-` would read `X_Forwarded_User` as
 * `x-forwarded-user`). Names of other lengths are passed over without allocating.
 */
export function spellingsOf(names: readonly string[]): (name: string) => boolean {
  const lengths = new Set(names.map((n) => n.length));
  return (name) => lengths.has(name.length) && names.includes(name.toLowerCase().replaceAll('_', '-'));
}

/** Removes every spelling of some headers from both `req.headers` and `req.rawHeaders`. */
export function stripHeaders(req: Request, matches: (name: string) => boolean): void {
  const raw = req.rawHeaders;
  let kept: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (matches(name)) {
      delete req.headers[name.toLowerCase()];
      kept ??= raw.slice(0, i);
    } else {
      kept?.push(name, raw[i + 1]!);
    }
  }
  if (kept !== undefined) raw.splice(0, raw.length, ...kept);
}

/** Sets a header the client could not have sent (it was stripped first). */
export function setHeader(req: Request, name: string, value: string): void {
  req.headers[name] = value;
  req.rawHeaders.push(name, value);
}
