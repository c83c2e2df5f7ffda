import { webcrypto } from 'node:crypto';
import { CompactEncrypt, type CompactJWEHeaderParameters, compactDecrypt } from 'jose';
import { UnavailableError } from '../errors.js';
import type { TokenRecord } from '../model.js';
import { sameUser } from '../validate.js';
import { type EncryptionKey, keyRing } from './encryption-keys.js';

export type { EncryptionKey } from './encryption-keys.js';

/** What one sealed credential holds. Everything is inside the ciphertext. */
export interface UpstreamCredential {
  /** The Bitbucket HTTP access token. */
  token: string;
  /** Its id in Bitbucket (what deletes it). */
  tokenId: string;
  /** The owner as Bitbucket names them, and their URL slug (Bitbucket's per-user REST paths). */
  user: string;
  slug: string;
  /** The id of our token this copy belongs to: a sealed credential moved to another record does not open. */
  ours: string;
  /** When Bitbucket expires it (epoch ms), or null. */
  expiresAt: number | null;
  /** Minted by the gate (deleted with our token) or linked by the user. */
  origin: 'minted' | 'linked';
}

const DECRYPT_OPTIONS = { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] };

const unavailable = (cause?: unknown) =>
  new UnavailableError(
    'UPSTREAM_CREDENTIAL_UNAVAILABLE',
    'The Bitbucket credential behind this API token cannot be read by this proxy (encryption key missing or changed). Ask an administrator.',
    cause === undefined ? undefined : { cause },
  );

/**
 * Seals Bitbucket credentials for the token store: JWE compact serialization, `dir` with
 * A256GCM (AES-256-GCM, authenticated), the key named by `kid`. The first key seals; every key
 * opens, so keys rotate by putting a new key first and dropping the old one once no stored
 * credential uses it. The keys live only here, never in the store.
 */
export class CredentialBox {
  readonly #current: string;
  /** WebCrypto keys, imported once each (jose would convert other key forms on every call). */
  readonly #keys: Map<string, Promise<webcrypto.CryptoKey>>;

  /** `keys` as given to `bitbucketAccessTokens`, or the ring `keyRing` already parsed from them. */
  constructor(keys: readonly EncryptionKey[] | ReadonlyMap<string, Buffer>, path = 'encryptionKeys') {
    const ring = keys instanceof Map ? keys : keyRing(keys as readonly EncryptionKey[], path);
    this.#current = ring.keys().next().value!;
    this.#keys = new Map();
    for (const [id, bytes] of ring) {
      const imported = webcrypto.subtle.importKey('raw', bytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
      imported.catch(() => {}); // reported where it is awaited
      this.#keys.set(id, imported);
    }
  }

  /** Seals a credential with the first key. */
  async seal(credential: UpstreamCredential): Promise<string> {
    const kid = this.#current;
    const plaintext = new TextEncoder().encode(JSON.stringify({ v: 1, ...credential }));
    return new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid })
      .encrypt(await this.#keys.get(kid)!);
  }

  /**
   * Opens the credential of `record`. Any failure (unknown key id, wrong key, tampering, a
   * credential sealed for another token or user) is a 503 `UPSTREAM_CREDENTIAL_UNAVAILABLE`
   * whose message holds no secret.
   */
  async open(record: Pick<TokenRecord, 'id' | 'user' | 'upstream'>): Promise<UpstreamCredential> {
    if (record.upstream === null) throw unavailable();
    let payload: unknown;
    try {
      const { plaintext } = await compactDecrypt(
        record.upstream,
        (header: CompactJWEHeaderParameters) => {
          const key = header.kid === undefined ? undefined : this.#keys.get(header.kid);
          if (key === undefined) throw new Error('unknown key id');
          return key;
        },
        DECRYPT_OPTIONS,
      );
      payload = JSON.parse(new TextDecoder().decode(plaintext));
    } catch (err) {
      throw unavailable(err);
    }
    const credential = payload as UpstreamCredential & { v?: unknown };
    if (
      credential?.v !== 1 ||
      typeof credential.token !== 'string' ||
      typeof credential.tokenId !== 'string' ||
      typeof credential.user !== 'string' ||
      typeof credential.slug !== 'string' ||
      credential.ours !== record.id ||
      !sameUser(credential.user, record.user)
    )
      throw unavailable();
    const { v: _version, ...rest } = credential;
    return rest;
  }
}
