/**
 * Bitbucket endpoints that mint credentials which outlive a revocation of our token: SSH keys
 * (`/rest/ssh/…`, project and repository access keys under `/rest/keys/…`), GPG keys
 * (`/rest/gpg/…`), HTTP access tokens (`/rest/access-tokens/…`), OAuth 2.0 grants
 * (`/rest/oauth2/…`), passwords (`/rest/api/<v>/users/credentials`,
 * `/rest/api/<v>/admin/users/credentials`, and a new user with a password: `POST
 * /rest/api/<v>/admin/users`), and the web pages that do the same (`/plugins/servlet/ssh/…`,
 * `…/gpg/…`, `…/access-tokens/…`, `/account/password`). Bitbucket's own HTTP access tokens may
 * not reach them either.
 *
 * Judged on a normalised path that can only say more than Bitbucket reads: every segment
 * percent-decoded until it stops changing (invalid UTF-8 decoded byte by byte), `;` parameters
 * dropped, `\` read as `/`, empty and `.` segments dropped, `..` applied, and letters
 * lower-cased. The rules match anywhere in the path (behind any context path such as
 * `/bitbucket`) and for any API version (`1.0`, `latest`, …).
 */

/** Namespaces under `rest/` that are credential endpoints as a whole. */
const REST_NAMESPACES = new Set(['ssh', 'keys', 'gpg', 'access-tokens', 'oauth2']);
/** Namespaces under `plugins/servlet/` (the web pages) that are credential endpoints. */
const SERVLET_NAMESPACES = new Set(['ssh', 'gpg', 'access-tokens', 'oauth2']);
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/**
 * The quick test that keeps the common path cheap. A path without anything a server could
 * decode or normalise (percent signs, `;`, backslashes, dot segments, doubled slashes,
 * whitespace, anything outside printable ASCII) reads as it is spelt, up to letter case, so this
 * case-insensitive pattern (a superset of the rules below) settles it; any other path gets the
 * full normalisation.
 */
const PLAIN_CANDIDATE =
  /\/(?:rest\/(?:ssh|keys|gpg|access-tokens|oauth2)(?:\/|$)|rest\/api\/[^/]+\/(?:users\/credentials|admin\/users)|plugins\/servlet\/(?:ssh|gpg|access-tokens|oauth2)(?:\/|$)|account\/password)/i;
const NOT_PLAIN = /[^\x21-\x7e]|[%;\\]|\/\.|\/\//;

/** Percent-decodes once; sequences that are not valid UTF-8 are decoded byte by byte. */
function decodeOnce(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
  }
}

/** The path as lower-case segments, read as widely as any server could read it. */
export function normalizedSegments(path: string): string[] {
  let decoded = path;
  for (let round = 0; round < 4; round++) {
    const next = decodeOnce(decoded);
    if (next === decoded) break;
    decoded = next;
  }
  const segments: string[] = [];
  for (const raw of decoded.toLowerCase().split(/[/\\]/)) {
    const segment = raw.split(';')[0]!.trim();
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  return segments;
}

/** Whether any claimed method (the request's own or an override) is not a read. */
function writes(method: string, headers: Readonly<Record<string, unknown>>, query: string): boolean {
  if (!READ_METHODS.has(method.toUpperCase())) return true;
  return (
    headers['x-http-method-override'] !== undefined ||
    headers['x-http-method'] !== undefined ||
    headers['x-method-override'] !== undefined ||
    /(?:^|&)_method=/i.test(query)
  );
}

/**
 * True when a request to `url` (path and query) with `method` reaches, or may reach, an
 * endpoint that creates a credential.
 */
export function isCredentialEndpoint(
  method: string,
  url: string,
  headers: Readonly<Record<string, unknown>>,
): boolean {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (!NOT_PLAIN.test(path) && !PLAIN_CANDIDATE.test(path)) return false; // the common case
  const s = normalizedSegments(path);
  for (let i = 0; i < s.length; i++) {
    const here = s[i];
    if (here === 'rest') {
      const namespace = s[i + 1];
      if (namespace !== undefined && REST_NAMESPACES.has(namespace)) return true;
      // rest/api/<version>/users/credentials, rest/api/<version>/admin/users[/credentials]
      if (namespace === 'api') {
        const rest = s.slice(i + 3);
        if (rest[0] === 'users' && rest[1] === 'credentials') return true;
        if (rest[0] === 'admin' && rest[1] === 'users') {
          if (rest[2] === 'credentials') return true;
          if (rest.length === 2 && writes(method, headers, q < 0 ? '' : url.slice(q + 1))) return true;
        }
      }
    } else if (here === 'plugins' && s[i + 1] === 'servlet') {
      const namespace = s[i + 2];
      if (namespace !== undefined && SERVLET_NAMESPACES.has(namespace)) return true;
    } else if (here === 'account' && s[i + 1] === 'password') {
      return true;
    }
  }
  return false;
}
