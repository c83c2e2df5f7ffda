import type { IncomingHttpHeaders } from 'node:http';
import type { Request } from 'express';

/** A test on header names. */
export type HeaderMatcher = (name: string) => boolean;

/**
 * A test for header names that mean one of `names` to some upstream: any letter case, and `_`
 * for `-` (CGI-style servers and proxies that fold `_` into `-` would read `X_Forwarded_User`
 * as `x-forwarded-user`). Names of other lengths are passed over without allocating.
 */
export function spellingsOf(names: readonly string[]): HeaderMatcher {
  const lowered = names.map((n) => n.toLowerCase());
  const lengths = new Set(lowered.map((n) => n.length));
  return (name) => lengths.has(name.length) && lowered.includes(name.toLowerCase().replaceAll('_', '-'));
}

/**
 * Removes every header `remove` matches from both `req.headers` and `req.rawHeaders`, so
 * whatever forwards the request sees one consistent set. When something is removed, both are
 * rebuilt once: deleting a property would turn V8's fast headers object into a slow dictionary
 * for every later read. The usual case, one header to drop (the token's `Authorization`),
 * copies the rest in one step.
 */
export function removeHeaders(req: Request, remove: HeaderMatcher): void {
  const raw = req.rawHeaders;
  let first: string | undefined;
  let several = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (!remove(raw[i]!)) continue;
    const name = raw[i]!.toLowerCase();
    if (first === undefined) first = name;
    else if (name !== first) several = true;
  }
  if (first === undefined) return;
  const kept: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!remove(raw[i]!)) kept.push(raw[i]!, raw[i + 1]!);
  req.rawHeaders = kept;
  if (several) {
    const old = req.headers;
    const headers: IncomingHttpHeaders = {};
    for (const name in old) if (!remove(name)) headers[name] = old[name];
    req.headers = headers;
  } else {
    const { [first]: _removed, ...headers } = req.headers;
    req.headers = headers;
  }
}

/** Sets a header in both `req.headers` and `req.rawHeaders` (after `removeHeaders` took any copy). */
export function addHeader(req: Request, name: string, value: string): void {
  req.headers[name] = value;
  req.rawHeaders.push(name, value);
}
