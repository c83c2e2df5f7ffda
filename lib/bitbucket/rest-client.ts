import { UnavailableError } from '../errors.js';

/** Validates `baseUrl` once: an http(s) URL, returned without a trailing slash. */
export function bitbucketBaseUrl(value: unknown, option = 'baseUrl'): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new TypeError(`\`${option}\` must be the Bitbucket URL, e.g. https://bitbucket.example.com`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '') {
    throw new TypeError(`\`${option}\` must be an http(s) URL without query or fragment`);
  }
  return url.href.replace(/\/+$/, '');
}

/**
 * GETs a Bitbucket REST resource with a deadline. A network failure or timeout is a 503
 * (fail closed); the caller judges the status.
 */
export async function bitbucketGet(url: string, authorization: string, timeoutMs: number): Promise<Response> {
  try {
    return await fetch(url, {
      headers: { Authorization: authorization, Accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new UnavailableError('UPSTREAM_UNAVAILABLE', 'Bitbucket could not be reached. Try again later.', {
      cause: err,
    });
  }
}

/** Reads a JSON body, or fails closed. */
export async function bitbucketJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch (err) {
    throw new UnavailableError('UPSTREAM_UNAVAILABLE', 'Bitbucket sent an unreadable answer.', {
      cause: err,
    });
  }
}
