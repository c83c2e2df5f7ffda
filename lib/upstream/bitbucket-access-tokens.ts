import { BITBUCKET_PERMISSIONS, type BitbucketPermission } from '../bitbucket/permissions.js';
import { bitbucketBaseUrl } from '../bitbucket/rest-client.js';
import { lazy, whenLoaded } from '../internal/lazy.js';
import {
  any,
  array,
  integer,
  object,
  oneOf,
  type Shape,
  string,
  validateOptions,
} from '../internal/options.js';
import { type EncryptionKey, keyRing } from './encryption-keys.js';
import type { RetryOptions } from './upstream-deletions.js';
import type { AccessTokenConfig, AttachContext, AttachedUpstream } from './upstream-mode.js';

export type { BitbucketPermission } from '../bitbucket/permissions.js';
export type { EncryptionKey } from './encryption-keys.js';
export type { RetryOptions } from './upstream-deletions.js';
export type { AttachedUpstream } from './upstream-mode.js';

/**
 * Bitbucket permissions each of our scopes is backed by.
 * @example
 * const permissions: ScopePermissions = { read: ['REPO_READ'], write: ['REPO_WRITE'] };
 * bitbucketAccessTokens({
 *   baseUrl,
 *   encryptionKeys: [{ id: '2025-06', key: process.env.TOKEN_ENCRYPTION_KEY! }],
 *   permissions,
 * });
 */
export interface ScopePermissions {
  /** Default `['REPO_READ', 'PROJECT_READ']`. */
  read?: readonly BitbucketPermission[];
  /** Default `['REPO_WRITE', 'PROJECT_WRITE']`. */
  write?: readonly BitbucketPermission[];
}

/**
 * Options of `bitbucketAccessTokens`.
 * @example
 * const options: BitbucketAccessTokensOptions = {
 *   baseUrl: 'https://bitbucket.example.com',
 *   encryptionKeys: [
 *     { id: '2026-11', key: process.env.TOKEN_ENCRYPTION_KEY! },
 *     { id: '2026-05', key: process.env.OLD_TOKEN_ENCRYPTION_KEY! }, // still decrypts older tokens
 *   ],
 *   timeoutMs: 10_000,
 * };
 * createTokenGate({ upstream: bitbucketAccessTokens(options) });
 */
export interface BitbucketAccessTokensOptions {
  /** Bitbucket's base URL, e.g. `https://bitbucket.example.com`. */
  baseUrl: string;
  /**
   * Keys that encrypt the Bitbucket tokens at rest (AES-256-GCM): `[{ id, key }]`, each key 32
   * random bytes. The first encrypts; all decrypt. Keep them outside the token store.
   */
  encryptionKeys: readonly EncryptionKey[];
  /**
   * A Bitbucket system administrator's HTTP access token. Used to delete users' Bitbucket
   * tokens (administrators may revoke any user's tokens) and to read a linked token's
   * permissions. Default: each Bitbucket token deletes and describes itself.
   */
  adminToken?: string;
  /**
   * Bitbucket permissions of minted tokens, and what a linked token must carry. Default:
   * read → `REPO_READ` + `PROJECT_READ`, write → `REPO_WRITE` + `PROJECT_WRITE`.
   */
  permissions?: ScopePermissions;
  /** Deadline of each call to Bitbucket. Default 5,000 ms. */
  timeoutMs?: number;
  /** How often expired tokens are looked for, to delete their Bitbucket tokens. Default 60,000 ms. */
  sweepIntervalMs?: number;
  /** Retries of failed deletions. Default: 1 s, doubling, at most 5 minutes apart. */
  retry?: RetryOptions;
}

const PERMISSION_LIST = array(oneOf(BITBUCKET_PERMISSIONS), { minLength: 1 });

const OPTIONS: Shape<BitbucketAccessTokensOptions> = {
  baseUrl: any,
  encryptionKeys: any,
  adminToken: string({ maxLength: 4096 }),
  permissions: object<ScopePermissions>({ read: PERMISSION_LIST, write: PERMISSION_LIST }),
  timeoutMs: integer(1, 600_000),
  sweepIntervalMs: integer(1_000, 86_400_000),
  retry: object<RetryOptions>({ initialDelayMs: integer(1, 3_600_000), maxDelayMs: integer(1, 86_400_000) }),
};

/**
 * How the gate reaches Bitbucket; pass it as `createTokenGate({ upstream })`. Opaque: its parts
 * are internal.
 * @example
 * const upstream: UpstreamMode = bitbucketAccessTokens({
 *   baseUrl,
 *   encryptionKeys: [{ id: 'k1', key: process.env.TOKEN_ENCRYPTION_KEY! }],
 * });
 * createTokenGate({ upstream });
 */
export interface UpstreamMode {
  /** `'bitbucket-access-tokens'`. */
  readonly kind: 'bitbucket-access-tokens';
}

const modes = new WeakMap<UpstreamMode, AccessTokenConfig>();

/**
 * The internals of an upstream mode (for `createTokenGate`; not exported by the package),
 * usable at once: its code is imported meanwhile (access-token-mode.ts), and what arrives
 * before it waits for it.
 */
export function attachUpstream(mode: UpstreamMode, context: AttachContext): AttachedUpstream {
  const config = modes.get(mode);
  if (config === undefined) throw new TypeError('`upstream` must be made by bitbucketAccessTokens(...)');
  let closed = false;
  const upstream = lazy(async () => {
    const attached = (await import('./access-token-mode.js')).attachAccessTokenMode(config, context);
    if (closed) attached.close();
    return attached;
  });
  upstream.get().catch(() => {}); // loading starts now; a failure reaches whatever waits for it
  return {
    hook: {
      acquire: async (request) => (await upstream.get()).hook.acquire(request),
      // Rejects only when the mode's code cannot be loaded: the revoke then fails loudly.
      release: async (record) => (await upstream.get()).hook.release(record),
    },
    requestStep(req, res, auth, next) {
      const loaded = upstream.loaded;
      if (loaded !== undefined) loaded.requestStep(req, res, auth, next);
      else whenLoaded(upstream, next, (attached) => attached.requestStep(req, res, auth, next));
    },
    close() {
      closed = true;
      upstream.loaded?.close();
    },
  };
}

/** True for values made by `bitbucketAccessTokens` (option check). */
export function isUpstreamMode(value: unknown): value is UpstreamMode {
  return typeof value === 'object' && value !== null && modes.has(value as UpstreamMode);
}

/**
 * Access-token mode: each of our tokens is backed by a Bitbucket HTTP access token of the same
 * user, and `protect()` sends that one upstream (`Authorization: Bearer …`), so a stock
 * Bitbucket authenticates requests natively — nothing to install on the Bitbucket side.
 *
 * Creating a token needs Bitbucket credentials of its owner: their password (the gate then
 * mints a Bitbucket token named `express-api-tokens <id>` with permissions mapped from the
 * scope and an expiry no earlier than ours, and forgets the password) or a Bitbucket token they
 * created themselves (`bitbucketToken`, checked against Bitbucket: it must be theirs and carry
 * the scope's permissions). The Bitbucket token is stored encrypted (JWE `dir` + A256GCM, keys
 * from `encryptionKeys`) and deleted in Bitbucket when ours is revoked or expires.
 * @example
 * const gate = createTokenGate({
 *   store,
 *   upstream: bitbucketAccessTokens({
 *     baseUrl: 'https://bitbucket.example.com',
 *     encryptionKeys: [{ id: '2025-06', key: process.env.TOKEN_ENCRYPTION_KEY! }],
 *     adminToken: process.env.BITBUCKET_ADMIN_TOKEN!,
 *   }),
 * });
 */
export function bitbucketAccessTokens(options: Readonly<BitbucketAccessTokensOptions>): UpstreamMode {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('bitbucketAccessTokens() takes an options object: { baseUrl, encryptionKeys }');
  validateOptions<BitbucketAccessTokensOptions>(options, OPTIONS);
  const baseUrl = bitbucketBaseUrl(options.baseUrl);
  if (options.encryptionKeys === undefined)
    throw new TypeError('`encryptionKeys` is required: [{ id, key }] with 32-byte keys');
  // Checked now; the encryption, Bitbucket's token API and the sweep load when a gate attaches.
  const mode: UpstreamMode = Object.freeze({ kind: 'bitbucket-access-tokens' as const });
  modes.set(mode, {
    baseUrl,
    keyRing: keyRing(options.encryptionKeys, 'encryptionKeys'),
    timeoutMs: options.timeoutMs ?? 5_000,
    permissions: {
      read: options.permissions?.read ?? ['REPO_READ', 'PROJECT_READ'],
      write: options.permissions?.write ?? ['REPO_WRITE', 'PROJECT_WRITE'],
    },
    adminToken: options.adminToken,
    retry: {
      initialDelayMs: options.retry?.initialDelayMs ?? 1_000,
      maxDelayMs: options.retry?.maxDelayMs ?? 300_000,
    },
    sweepIntervalMs: options.sweepIntervalMs ?? 60_000,
  });
  return mode;
}
