import { createHmac, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

/**
 * Turns a token's secret material into what the store keeps, and checks it back.
 * Implement it to plug in another algorithm; `verify` must compare in constant time.
 */
export interface TokenHasher {
  /** Short name, for logs and diagnostics. */
  readonly name: string;
  /** True for deliberately slow hashes: the gate then bounds concurrent checks. */
  readonly slow: boolean;
  hash(material: string): Promise<string>;
  verify(material: string, stored: string): Promise<boolean>;
}

export interface Sha256HasherOptions {
  /**
   * Server-side secret mixed into every hash (HMAC key), kept out of the store, so a stolen
   * store dump cannot be checked offline. Default: a fixed public key (plain keyed SHA-256).
   */
  pepper?: string | Buffer;
}

const SHA256_TAG = 'hmac-sha256$';
const DEFAULT_PEPPER = 'express-api-tokens';

/**
 * HMAC-SHA256, the default. Tokens carry 256 random bits, so a fast keyed hash is safe at rest.
 * @example createTokenGate({ hasher: sha256Hasher({ pepper: process.env.TOKEN_PEPPER }) })
 */
export function sha256Hasher(options: Readonly<Sha256HasherOptions> = {}): TokenHasher {
  const pepper = options.pepper ?? DEFAULT_PEPPER;
  if ((typeof pepper !== 'string' && !Buffer.isBuffer(pepper)) || pepper.length === 0) {
    throw new TypeError('`pepper` must be a non-empty string or Buffer');
  }
  const digest = (material: string) => createHmac('sha256', pepper).update(material).digest();
  return {
    name: 'sha256',
    slow: false,
    async hash(material) {
      return SHA256_TAG + digest(material).toString('base64url');
    },
    async verify(material, stored) {
      const actual = digest(material);
      const expected = stored.startsWith(SHA256_TAG)
        ? Buffer.from(stored.slice(SHA256_TAG.length), 'base64url')
        : null;
      // Compare a same-length buffer either way, so a foreign hash costs the same time.
      const ok = timingSafeEqual(
        actual,
        expected?.length === actual.length ? expected : Buffer.alloc(actual.length),
      );
      return ok && expected !== null && expected.length === actual.length;
    },
  };
}

export interface BcryptHasherOptions {
  /** bcrypt cost factor, 4 to 31. Default 10 (about 86 ms a check in pure JS). */
  cost?: number;
}

/** bcrypt (bcryptjs), for policies that demand a slow hash. The gate's cache keeps requests fast. */
export function bcryptHasher(options: Readonly<BcryptHasherOptions> = {}): TokenHasher {
  const cost = options.cost ?? 10;
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) {
    throw new TypeError(`\`cost\` must be an integer from 4 to 31, got ${String(cost)}`);
  }
  return {
    name: 'bcrypt',
    slow: true,
    hash: (material) => bcrypt.hash(material, cost),
    // bcryptjs compares the computed and stored hashes in constant time.
    verify: (material, stored) =>
      stored.startsWith('$2') ? bcrypt.compare(material, stored) : Promise.resolve(false),
  };
}

/** Resolves the `hasher` option: a name or a ready `TokenHasher`. */
export function resolveHasher(
  hasher: 'sha256' | 'bcrypt' | TokenHasher | undefined,
  pepper?: string | Buffer,
): TokenHasher {
  if (hasher === undefined || hasher === 'sha256')
    return sha256Hasher(pepper === undefined ? {} : { pepper });
  if (hasher === 'bcrypt') return bcryptHasher();
  if (
    typeof hasher === 'object' &&
    hasher !== null &&
    typeof hasher.hash === 'function' &&
    typeof hasher.verify === 'function'
  ) {
    return hasher;
  }
  throw new TypeError("`hasher` must be 'sha256', 'bcrypt' or an object with hash() and verify()");
}
