import { createHash, randomBytes } from 'node:crypto';
import type { Scope } from '../model.js';
import type { TokenStore } from '../stores/token-store.js';

/** A random secret (a code, a device code, a refresh token's secret part): 256 bits, base64url. */
export const newSecret = () => randomBytes(32).toString('base64url');

/** What the store keeps of a secret: its SHA-256 (the secrets are random, so no pepper is needed). */
export const digest = (secret: string) => createHash('sha256').update(secret).digest('base64url');

/** What a person granted on the consent page, carried by a code, a device code and a refresh family. */
export interface Grant {
  user: string;
  client: string;
  scope: Scope;
  /** Repository restriction chosen on the consent page, or null. */
  resources: string[] | null;
  /** Lifetime of each access token. */
  lifetimeMs: number;
  /**
   * Groups the login's provider vouched for at consent (the session's); each refresh judges the
   * permissions again with these and the gate's `groups` as they are then.
   */
  claimGroups?: string[];
}

/** An authorization code's record, under the digest of the code: single use, 60 s. */
export interface CodeRecord extends Grant {
  redirectUri: string;
  challenge: string;
}

/** A device authorization's record, under the digest of the device code. */
export interface DeviceRecord {
  client: string;
  /** The scope the device asked for, or null. */
  requested: Scope | null;
  userCode: string;
  expiresAt: number;
  status: 'pending' | 'approved' | 'denied';
  grant?: Grant;
}

/** A refresh token family: one sign-in, its current refresh secret (digest) and access token. */
export interface FamilyRecord extends Grant {
  /** Digest of the refresh secret now valid; any other secret of the family is a reuse. */
  secret: string;
  /** When the sign-in happened (the absolute lifetime counts from here). */
  signedInAt: number;
  accessTokenId: string;
  accessExpiresAt: number;
}

/** The store methods the OAuth server needs: keyed values shared by the fleet, and `claim`. */
export type GrantStore = Required<Pick<TokenStore, 'putValue' | 'getValue' | 'takeValue'>> &
  Pick<TokenStore, 'claim'>;

const KEY = 'oauth:';

/**
 * The OAuth server's state as JSON in the store's keyed values. Keys hold digests or random
 * ids, never a secret; values hold no secret either (only digests and PKCE challenges).
 */
export class GrantState {
  readonly #store: GrantStore;

  constructor(store: GrantStore) {
    this.#store = store;
  }

  async put(kind: string, id: string, value: object, ttlMs: number): Promise<void> {
    await this.#store.putValue(`${KEY}${kind}:${id}`, JSON.stringify(value), Math.max(1, Math.ceil(ttlMs)));
  }

  async get<T>(kind: string, id: string): Promise<T | null> {
    return parse<T>(await this.#store.getValue(`${KEY}${kind}:${id}`));
  }

  /** Reads and removes: of concurrent callers on the fleet, one gets the value. */
  async take<T>(kind: string, id: string): Promise<T | null> {
    return parse<T>(await this.#store.takeValue(`${KEY}${kind}:${id}`));
  }

  /** True once per `ttlMs` for `key` on the fleet (device polling pace); true when the store cannot claim. */
  async claim(key: string, ttlMs: number): Promise<boolean> {
    return this.#store.claim === undefined ? true : this.#store.claim(`${KEY}${key}`, ttlMs);
  }

  /** A raw value another part of the library keeps (the `revokeAll` mark). */
  async raw(key: string): Promise<string | null> {
    return this.#store.getValue(key);
  }
}

function parse<T>(value: string | null): T | null {
  if (value === null) return null;
  try {
    return JSON.parse(value) as T;
  } catch {
    return null;
  }
}
