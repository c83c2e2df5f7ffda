/** Host names of loopback redirects (RFC 8252 §7.3); `localhost` too, as git helpers and GCM use it. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Whether `uri` may receive codes for a client: any port and path on a loopback host over
 * plain http (the port is chosen by the app at run time), or one of its registered URIs exactly.
 */
export function redirectAllowed(uri: string, registered: readonly string[]): boolean {
  if (uri.length > 2_000) return false;
  if (registered.includes(uri)) return true;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  return (
    url.protocol === 'http:' &&
    LOOPBACK_HOSTS.has(url.hostname) &&
    url.username === '' &&
    url.password === '' &&
    url.hash === '' &&
    !uri.includes('#')
  );
}

/** The redirect URI with the answer's parameters added to its query. */
export function redirectWith(uri: string, params: Record<string, string>): string {
  const url = new URL(uri);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url.href;
}
