import { UnavailableError } from '../errors.js';
import type { GroupResolver } from '../groups/group-resolver.js';
import { BoundedCache } from '../internal/bounded-cache.js';
import { any, integer, string, validateOptions } from '../internal/options.js';
import { foldName, isUserName } from '../validate.js';
import { bitbucketBaseUrl, bitbucketGet, bitbucketJson } from './rest-client.js';

/**
 * Options of `bitbucketGroups`.
 * @example
 * const options: BitbucketGroupsOptions = {
 *   baseUrl: 'https://bitbucket.example.com',
 *   token: process.env.BITBUCKET_ADMIN_TOKEN!,
 *   cacheTtlMs: 300_000,
 * };
 * createTokenGate({ groups: bitbucketGroups(options) });
 */
export interface BitbucketGroupsOptions {
  /** Bitbucket's base URL, e.g. `https://bitbucket.example.com`. */
  baseUrl: string;
  /** An HTTP access token (or personal token) of an account with ADMIN permission. Sent as Bearer. */
  token: string;
  /** How long a user's groups are remembered. Default 60,000 ms. */
  cacheTtlMs?: number;
  /** Most users remembered. Default 10,000. */
  maxEntries?: number;
  /** Deadline of each call to Bitbucket. Default 5,000 ms. */
  timeoutMs?: number;
}

interface BitbucketPage {
  values?: Array<{ name?: unknown }>;
  isLastPage?: unknown;
  nextPageStart?: unknown;
}

const PAGE_LIMIT = 500;
const MAX_PAGES = 100;

/**
 * A GroupResolver that asks Bitbucket Server / Data Center which groups a user is in
 * (`GET /rest/api/1.0/admin/users/more-members?context=<user>`, all pages), with a bounded
 * cache. Bitbucket unreachable or answering an error fails closed (503), never "no groups".
 * @example
 * createTokenGate({ groups: bitbucketGroups({ baseUrl, token: process.env.BITBUCKET_ADMIN_TOKEN! }) });
 */
export function bitbucketGroups(options: Readonly<BitbucketGroupsOptions>): GroupResolver {
  validateOptions<BitbucketGroupsOptions>(options, {
    baseUrl: any,
    token: string(),
    cacheTtlMs: integer(),
    maxEntries: integer(),
    timeoutMs: integer(),
  });
  if (options.token === undefined) throw new TypeError('`token` must be a Bitbucket HTTP access token');
  const baseUrl = bitbucketBaseUrl(options.baseUrl);
  const authorization = `Bearer ${options.token}`;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const cache = new BoundedCache<string, readonly string[]>(
    options.maxEntries ?? 10_000,
    options.cacheTtlMs ?? 60_000,
  );
  const inFlight = new Map<string, Promise<readonly string[]>>();

  async function fetchGroups(user: string): Promise<readonly string[]> {
    const groups: string[] = [];
    let start = 0;
    for (let page = 0; page < MAX_PAGES; page++) {
      const url = `${baseUrl}/rest/api/1.0/admin/users/more-members?context=${encodeURIComponent(user)}&start=${start}&limit=${PAGE_LIMIT}`;
      const response = await bitbucketGet(url, authorization, timeoutMs);
      if (response.status === 404) return [];
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new UnavailableError(
          'UPSTREAM_UNAVAILABLE',
          `Bitbucket refused the group lookup (${response.status}).`,
        );
      }
      const body = (await bitbucketJson(response)) as BitbucketPage;
      if (!Array.isArray(body?.values))
        throw new UnavailableError('UPSTREAM_UNAVAILABLE', 'Bitbucket sent an unexpected group page.');
      for (const value of body.values) if (typeof value?.name === 'string') groups.push(value.name);
      if (body.isLastPage !== false) return groups;
      if (typeof body.nextPageStart !== 'number' || body.nextPageStart <= start) {
        throw new UnavailableError(
          'UPSTREAM_UNAVAILABLE',
          'Bitbucket sent a group page without a next page.',
        );
      }
      start = body.nextPageStart;
    }
    throw new UnavailableError('UPSTREAM_UNAVAILABLE', 'Bitbucket sent too many group pages.');
  }

  return async function bitbucketGroupResolver(user) {
    // Bitbucket lower-cases as Java does (`\u212Aate` is kate there): a name outside the naming
    // rule is in no group rather than in someone else's.
    if (!isUserName(user)) return [];
    const key = foldName(user);
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const pending = inFlight.get(key);
    if (pending) return pending;
    const lookup = fetchGroups(user)
      .then((groups) => {
        cache.set(key, Object.freeze(groups));
        return groups;
      })
      .finally(() => inFlight.delete(key));
    inFlight.set(key, lookup);
    return lookup;
  };
}
