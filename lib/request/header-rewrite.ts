import type { IncomingHttpHeaders } from 'node:http';
import type { Request } from 'express';

/** A test on header names. */
export type HeaderMatcher = (name: string) => boolean;

/** A header name as an upstream may read it: ASCII letters in lower case, `_` as `-`. */
const fold = (name: string) => name.toLowerCase().replaceAll('_', '-');

/**
 * A test for header names that mean one of `names` to some upstream: any letter case, and `_`
 * for `-` (CGI-style servers and proxies that fold `_` into `-` would read `X_Forwarded_User`
 * as `x-forwarded-user`). Compares character by character, allocating nothing: header names
 * are ASCII (Node refuses others).
 */
export function spellingsOf(names: readonly string[]): HeaderMatcher {
  const folded = names.map(fold);
  return (name) => {
    for (const candidate of folded) {
      if (candidate.length !== name.length) continue;
      let i = 0;
      for (; i < name.length; i++) {
        let code = name.charCodeAt(i);
        if (code >= 65 && code <= 90) code += 32;
        else if (code === 95) code = 45;
        if (code !== candidate.charCodeAt(i)) break;
      }
      if (i === name.length) return true;
    }
    return false;
  };
}

/**
 * Removes every header `remove` matches from both `req.headers` and `req.rawHeaders`, so
 * whatever forwards the request sees one consistent set. `rawHeaders` is changed in place;
 * `headers` is rebuilt when something is removed: deleting a property would turn V8's fast
 * headers object into a slow dictionary for every later read, and an object rest with a
 * computed key (`{ [name]: _, ...rest }`) goes through a generic runtime call on every request.
 */
export function removeHeaders(req: Request, remove: HeaderMatcher): void {
  const raw = req.rawHeaders;
  let removed = false;
  // From the end, so the indexes still to visit do not move.
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (!remove(raw[i]!)) continue;
    raw.splice(i, 2);
    removed = true;
  }
  if (!removed) return;
  const old = req.headers;
  const headers: IncomingHttpHeaders = {};
  for (const name in old) if (!remove(name)) headers[name] = old[name];
  req.headers = headers;
}

/** Sets a header in both `req.headers` and `req.rawHeaders` (after `removeHeaders` took any copy). */
export function addHeader(req: Request, name: string, value: string): void {
  req.headers[name] = value;
  req.rawHeaders.push(name, value);
}
