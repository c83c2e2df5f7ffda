import { bitbucketBaseUrl, bitbucketGet, bitbucketJson } from '../bitbucket/rest-client.js';
import { UnavailableError } from '../errors.js';
import { BoundedCache } from '../internal/bounded-cache.js';
import { any, integer, string, validateOptions } from '../internal/options.js';
import { sameUser } from '../validate.js';

/**
 * Options of `bitbucketEmails`.
 * @example
 * const options: BitbucketEmailsOptions = { baseUrl, token: process.env.BITBUCKET_ADMIN_TOKEN! };
 */
export interface BitbucketEmailsOptions {
  /** Bitbucket's base URL, e.g. `https://bitbucket.example.com`. */
  baseUrl: string;
  /** An HTTP access token of an account that may see users' e-mail addresses (ADMIN). Sent as Bearer. */
  token: string;
  /** How long an address is remembered. Default 3,600,000 ms (an hour). */
  cacheTtlMs?: number;
  /** Deadline of each call to Bitbucket. Default 5,000 ms. */
  timeoutMs?: number;
}

/**
 * `notify.email.emailOf` from Bitbucket's user API (`GET /rest/api/1.0/users?filter=<user>`,
 * the user whose name matches exactly): their `emailAddress`, or undefined when they have none.
 * Bitbucket unreachable is an error, and the e-mail is retried later.
 * @example
 * createTokenGate({
 *   notify: {
 *     email: { smtp, from, emailOf: bitbucketEmails({ baseUrl, token: process.env.BITBUCKET_ADMIN_TOKEN! }) },
 *   },
 * });
 */
export function bitbucketEmails(
  options: Readonly<BitbucketEmailsOptions>,
): (user: string) => Promise<string | undefined> {
  validateOptions<BitbucketEmailsOptions>(options, {
    baseUrl: any,
    token: string(),
    cacheTtlMs: integer(),
    timeoutMs: integer(),
  });
  if (options.token === undefined) throw new TypeError('`token` must be a Bitbucket HTTP access token');
  const baseUrl = bitbucketBaseUrl(options.baseUrl);
  const authorization = `Bearer ${options.token}`;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const cache = new BoundedCache<string, string | null>(10_000, options.cacheTtlMs ?? 3_600_000);
  return async (user) => {
    const key = user.toLowerCase();
    const known = cache.get(key);
    if (known !== undefined) return known ?? undefined;
    const url = `${baseUrl}/rest/api/1.0/users?filter=${encodeURIComponent(user)}&limit=100`;
    const response = await bitbucketGet(url, authorization, timeoutMs);
    if (!response.ok) {
      await response.body?.cancel();
      throw new UnavailableError(
        'UPSTREAM_UNAVAILABLE',
        `Bitbucket answered ${response.status} to a user lookup.`,
      );
    }
    const page = (await bitbucketJson(response)) as {
      values?: Array<{ name?: unknown; emailAddress?: unknown }>;
    };
    const match = page.values?.find((value) => typeof value.name === 'string' && sameUser(value.name, user));
    const address =
      typeof match?.emailAddress === 'string' && match.emailAddress !== '' ? match.emailAddress : null;
    cache.set(key, address);
    return address ?? undefined;
  };
}
