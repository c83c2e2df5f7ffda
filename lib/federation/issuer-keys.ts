import {
  type CryptoKey,
  createLocalJWKSet,
  errors,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type LocalJWKSet,
} from 'jose';
import { isFetchableUrl } from './trust-rules.js';

/** An issuer's keys cannot be had (unreachable, slow, or answering nonsense): the exchange answers 503. */
export class IssuerUnavailableError extends Error {
  override readonly name = 'IssuerUnavailableError';
}

export interface IssuerKeysOptions {
  /** Deadline of each request to an issuer. */
  timeoutMs: number;
  /** How long fetched keys are used before they are fetched again. */
  maxAgeMs: number;
  /** Least time between two fetches caused by an unknown `kid`. */
  refetchIntervalMs: number;
  /** Issuers whose rules allow plain http on loopback. */
  insecureLoopbackIssuers: ReadonlySet<string>;
  now?: () => number;
}

interface IssuerState {
  keys: LocalJWKSet | null;
  /** When the keys in use were fetched. */
  fetchedAt: number;
  /** When a fetch last began, successful or not: unknown kids wait on this one. */
  attemptedAt: number;
  pending: Promise<LocalJWKSet> | null;
}

const MAX_DOCUMENT_BYTES = 512 * 1024;

function parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

/** Reads a JSON document of at most MAX_DOCUMENT_BYTES, refusing redirects and anything but 200. */
async function fetchJson(url: URL, timeoutMs: number): Promise<unknown> {
  const response = await fetch(url, {
    redirect: 'error',
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new IssuerUnavailableError(`${url.origin} answered ${response.status}`);
  }
  const reader = response.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (reader !== undefined) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_DOCUMENT_BYTES) {
      await reader.cancel();
      throw new IssuerUnavailableError(`${url.origin} sent more than ${MAX_DOCUMENT_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/**
 * The signing keys of each trusted issuer: its discovery document's `jwks_uri`, fetched on
 * first use, kept for `maxAgeMs`, fetched again early when a token names an unknown `kid` (at
 * most once per `refetchIntervalMs`, so forged kids cannot make us hammer the issuer).
 * Symmetric keys are dropped: only public keys ever verify a job token. Concurrent callers
 * share one fetch. Failing to fetch is an `IssuerUnavailableError`, never "no key".
 */
export class IssuerKeys {
  readonly #options: IssuerKeysOptions;
  readonly #now: () => number;
  readonly #issuers = new Map<string, IssuerState>();

  constructor(options: IssuerKeysOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The key for a token's header; throws jose's JWKSNoMatchingKey when the issuer has none. */
  async keyFor(issuer: string, header: JWSHeaderParameters): Promise<CryptoKey> {
    let state = this.#issuers.get(issuer);
    if (state === undefined) {
      state = { keys: null, fetchedAt: 0, attemptedAt: 0, pending: null };
      this.#issuers.set(issuer, state);
    }
    const fresh = state.keys !== null && this.#now() - state.fetchedAt < this.#options.maxAgeMs;
    const keys = fresh ? state.keys! : await this.#refresh(issuer, state);
    try {
      return await keys(header);
    } catch (err) {
      const mayRefetch = this.#now() - state.attemptedAt >= this.#options.refetchIntervalMs;
      if (!(err instanceof errors.JWKSNoMatchingKey) || !mayRefetch) throw err;
      // Perhaps the issuer rotated its keys since we fetched them.
      return (await this.#refresh(issuer, state))(header);
    }
  }

  #refresh(issuer: string, state: IssuerState): Promise<LocalJWKSet> {
    if (state.pending === null) state.attemptedAt = this.#now();
    state.pending ??= this.#fetch(issuer)
      .then((keys) => {
        state.keys = keys;
        state.fetchedAt = this.#now();
        return keys;
      })
      .finally(() => {
        state.pending = null;
      });
    return state.pending;
  }

  async #fetch(issuer: string): Promise<LocalJWKSet> {
    const insecure = this.#options.insecureLoopbackIssuers.has(issuer);
    const timeoutMs = this.#options.timeoutMs;
    try {
      const discovery = new URL(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
      const metadata = (await fetchJson(discovery, timeoutMs)) as Record<string, unknown> | null;
      if (metadata?.['issuer'] !== issuer)
        throw new IssuerUnavailableError(
          `${discovery.origin} names another issuer in its discovery document`,
        );
      const jwksUri = typeof metadata['jwks_uri'] === 'string' ? parseUrl(metadata['jwks_uri']) : null;
      if (jwksUri === null || !isFetchableUrl(jwksUri, insecure))
        throw new IssuerUnavailableError(`${discovery.origin} names no https jwks_uri`);
      const jwks = (await fetchJson(jwksUri, timeoutMs)) as JSONWebKeySet | null;
      if (!Array.isArray(jwks?.keys)) throw new IssuerUnavailableError(`${jwksUri.origin} sent no key set`);
      const keys = jwks.keys.filter((key) => typeof key === 'object' && key !== null && key.kty !== 'oct');
      return createLocalJWKSet({ keys });
    } catch (err) {
      if (err instanceof IssuerUnavailableError) throw err;
      throw new IssuerUnavailableError(`The keys of ${new URL(issuer).origin} could not be fetched`, {
        cause: err,
      });
    }
  }
}
