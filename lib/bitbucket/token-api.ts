import { UnavailableError } from '../errors.js';
import type { BitbucketPermission } from './permissions.js';

export type { BitbucketPermission } from './permissions.js';

const LEVEL = { READ: 1, WRITE: 2, ADMIN: 3 } as const;

/** The permissions of `needed` that `granted` does not cover (ADMIN covers WRITE covers READ, per kind). */
export function missingPermissions(
  granted: readonly string[],
  needed: readonly BitbucketPermission[],
): BitbucketPermission[] {
  const best = new Map<string, number>();
  for (const permission of granted) {
    const [kind, level] = permission.split('_') as [string, keyof typeof LEVEL];
    if (LEVEL[level] !== undefined) best.set(kind, Math.max(best.get(kind) ?? 0, LEVEL[level]));
  }
  return needed.filter((permission) => {
    const [kind, level] = permission.split('_') as [string, keyof typeof LEVEL];
    return (best.get(kind) ?? 0) < LEVEL[level];
  });
}

/**
 * The id Bitbucket gives a personal HTTP access token, read from the token itself: Bitbucket's
 * tokens are base64 of `<numeric id>:<secret bytes>` (optionally after a `BBDC-` prefix).
 * Undefined when the text is not shaped like one.
 */
export function bitbucketTokenId(token: string): string | undefined {
  const body = token.startsWith('BBDC-') ? token.slice(5) : token;
  if (!/^[A-Za-z0-9+/_-]{16,}={0,2}$/.test(body)) return undefined;
  const decoded = Buffer.from(body, 'base64').subarray(0, 24).toString('latin1');
  return /^(\d{1,20}):/.exec(decoded)?.[1];
}

/** A Bitbucket failure that may have happened after Bitbucket acted (a timeout, a 5xx). */
export class BitbucketUnavailable extends UnavailableError {
  /** True when Bitbucket may have carried out the request although we got no answer. */
  readonly ambiguous: boolean;
  constructor(message: string, ambiguous: boolean, cause?: unknown) {
    super('UPSTREAM_UNAVAILABLE', message, cause === undefined ? undefined : { cause });
    this.ambiguous = ambiguous;
  }
}

/** How Bitbucket refused a credential: it did not authenticate, or it did but may not do this. */
export type Refusal = 'unauthenticated' | 'not-permitted';

/** Bitbucket's error body, as far as we read it. */
interface ErrorBody {
  errors?: Array<{ message?: unknown; exceptionName?: unknown }>;
}

/**
 * Tells a 401/403 where the credential authenticated but lacks a permission (Bitbucket then
 * names `AuthorisationException` and reports the user in `X-AUSERNAME`) from one where the
 * credential itself was refused (wrong, revoked or expired).
 */
export function refusalOf(headers: Headers, body: unknown): Refusal {
  if (headers.get('x-ausername')) return 'not-permitted';
  const errors = (body as ErrorBody | null)?.errors;
  const named = Array.isArray(errors)
    ? errors.some(
        (e) => typeof e?.exceptionName === 'string' && /AuthorisationException$/.test(e.exceptionName),
      )
    : false;
  return named ? 'not-permitted' : 'unauthenticated';
}

/** The first message of Bitbucket's error body, trimmed to a sentence we can show. */
export function bitbucketMessage(body: unknown): string | undefined {
  const message = (body as ErrorBody | null)?.errors?.[0]?.message;
  return typeof message === 'string' && message.length > 0 ? message.slice(0, 300) : undefined;
}

/** A created token: the secret is in `token`, shown by Bitbucket this once. */
export interface RawAccessToken {
  id: string;
  token: string;
  expiresAt: number | null;
}

/** A token as Bitbucket lists it (never with its secret). */
export interface AccessTokenDetails {
  id: string;
  name: string;
  permissions: string[];
  expiresAt: number | null;
  user: string | null;
}

export type Answer<T> =
  | { ok: true; value: T }
  | { ok: false; status: number; refusal?: Refusal; message?: string };

function expiryOf(value: Record<string, unknown>): number | null {
  const date = value['expiryDate'];
  if (typeof date === 'number' && Number.isFinite(date)) return date;
  if (typeof date === 'string' && Number.isFinite(Date.parse(date))) return Date.parse(date);
  return null;
}

function detailsOf(value: unknown): AccessTokenDetails | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v['id'] !== 'string') return undefined;
  const user = v['user'] as Record<string, unknown> | undefined;
  return {
    id: v['id'],
    name: typeof v['name'] === 'string' ? v['name'] : '',
    permissions: Array.isArray(v['permissions'])
      ? v['permissions'].filter((p): p is string => typeof p === 'string')
      : [],
    expiresAt: expiryOf(v),
    user: typeof user?.['name'] === 'string' ? user['name'] : null,
  };
}

/** `Authorization` value of a user name and password. */
export function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** `Authorization` value of an access token. */
export function bearerAuthorization(token: string): string {
  return `Bearer ${token}`;
}

/**
 * The few calls of Bitbucket's REST API the access-token mode makes, each with a deadline.
 * Network failures and 5xx answers throw `BitbucketUnavailable` (a 503); every other answer is
 * returned for the caller to judge.
 */
export class BitbucketTokenApi {
  readonly #baseUrl: string;
  readonly #timeoutMs: number;

  constructor(baseUrl: string, timeoutMs: number) {
    this.#baseUrl = baseUrl;
    this.#timeoutMs = timeoutMs;
  }

  async #call(
    method: string,
    path: string,
    authorization: string,
    body?: unknown,
  ): Promise<{ status: number; headers: Headers; json: unknown }> {
    let response: Response;
    try {
      response = await fetch(`${this.#baseUrl}${path}`, {
        method,
        headers: {
          Authorization: authorization,
          Accept: 'application/json',
          // Bitbucket's XSRF check: REST writes from scripts carry this header.
          'X-Atlassian-Token': 'no-check',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      // A refused connection never reached Bitbucket; a timeout may have.
      const timedOut = (err as { name?: unknown })?.name === 'TimeoutError';
      throw new BitbucketUnavailable(
        timedOut
          ? 'Bitbucket did not answer in time. Try again later.'
          : 'Bitbucket could not be reached. Try again later.',
        timedOut,
        err,
      );
    }
    const text = await response.text().catch(() => '');
    let json: unknown = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      json = null;
    }
    if (response.status >= 500)
      throw new BitbucketUnavailable(`Bitbucket failed (${response.status}). Try again later.`, true);
    return { status: response.status, headers: response.headers, json };
  }

  #refused<T>(answer: { status: number; headers: Headers; json: unknown }): Answer<T> {
    const message = bitbucketMessage(answer.json);
    return {
      ok: false,
      status: answer.status,
      ...(answer.status === 401 || answer.status === 403
        ? { refusal: refusalOf(answer.headers, answer.json) }
        : {}),
      ...(message === undefined ? {} : { message }),
    };
  }

  /** `PUT /rest/access-tokens/latest/users/{slug}`: creates a personal HTTP access token. */
  async create(
    slug: string,
    authorization: string,
    request: { name: string; permissions: readonly string[]; expiryDays?: number },
  ): Promise<Answer<RawAccessToken>> {
    const answer = await this.#call(
      'PUT',
      `/rest/access-tokens/latest/users/${encodeURIComponent(slug)}`,
      authorization,
      request,
    );
    if (answer.status !== 200 && answer.status !== 201) return this.#refused(answer);
    const v = answer.json as Record<string, unknown> | null;
    if (typeof v?.['id'] !== 'string' || typeof v['token'] !== 'string')
      throw new BitbucketUnavailable('Bitbucket sent an unreadable answer.', true);
    return { ok: true, value: { id: v['id'], token: v['token'], expiresAt: expiryOf(v) } };
  }

  /** `GET /rest/access-tokens/latest/users/{slug}/{id}`: one token's details. */
  async read(slug: string, id: string, authorization: string): Promise<Answer<AccessTokenDetails>> {
    const answer = await this.#call(
      'GET',
      `/rest/access-tokens/latest/users/${encodeURIComponent(slug)}/${encodeURIComponent(id)}`,
      authorization,
    );
    const details = answer.status === 200 ? detailsOf(answer.json) : undefined;
    return details === undefined ? this.#refused(answer) : { ok: true, value: details };
  }

  /** `GET /rest/access-tokens/latest/users/{slug}`: the user's tokens (every page). */
  async list(slug: string, authorization: string): Promise<Answer<AccessTokenDetails[]>> {
    const values: AccessTokenDetails[] = [];
    for (let start = 0, pages = 0; pages < 50; pages++) {
      const answer = await this.#call(
        'GET',
        `/rest/access-tokens/latest/users/${encodeURIComponent(slug)}?start=${start}&limit=100`,
        authorization,
      );
      if (answer.status !== 200) return this.#refused(answer);
      const page = answer.json as { values?: unknown[]; isLastPage?: unknown; nextPageStart?: unknown };
      for (const value of page?.values ?? []) {
        const details = detailsOf(value);
        if (details !== undefined) values.push(details);
      }
      if (page?.isLastPage !== false || typeof page.nextPageStart !== 'number') break;
      start = page.nextPageStart;
    }
    return { ok: true, value: values };
  }

  /** `DELETE /rest/access-tokens/latest/users/{slug}/{id}`: true once the token is gone (204, or 404). */
  async delete(slug: string, id: string, authorization: string): Promise<Answer<true>> {
    const answer = await this.#call(
      'DELETE',
      `/rest/access-tokens/latest/users/${encodeURIComponent(slug)}/${encodeURIComponent(id)}`,
      authorization,
    );
    return answer.status === 204 || answer.status === 200 || answer.status === 404
      ? { ok: true, value: true }
      : this.#refused(answer);
  }

  /**
   * Who a credential authenticates as: `GET /rest/api/latest/application-properties` (which any
   * authenticated caller may read) and Bitbucket's `X-AUSERNAME` answer header. A refused
   * credential answers `ok: false` with status 401.
   */
  async whoAmI(authorization: string): Promise<Answer<string | null>> {
    const answer = await this.#call('GET', '/rest/api/latest/application-properties', authorization);
    if (answer.status !== 200) return this.#refused(answer);
    return { ok: true, value: answer.headers.get('x-ausername') };
  }

  /** A user's name and slug, looked up by name (`GET /rest/api/latest/users?filter=`), or undefined. */
  async findUser(
    name: string,
    authorization: string,
  ): Promise<Answer<{ name: string; slug: string } | undefined>> {
    const answer = await this.#call(
      'GET',
      `/rest/api/latest/users?filter=${encodeURIComponent(name)}&limit=100`,
      authorization,
    );
    if (answer.status !== 200) return this.#refused(answer);
    const values = (answer.json as { values?: Array<Record<string, unknown>> } | null)?.values ?? [];
    const match = values.find(
      (v) => typeof v['name'] === 'string' && v['name'].toLowerCase() === name.toLowerCase(),
    );
    return {
      ok: true,
      value:
        typeof match?.['name'] === 'string' && typeof match['slug'] === 'string'
          ? { name: match['name'], slug: match['slug'] }
          : undefined,
    };
  }
}
