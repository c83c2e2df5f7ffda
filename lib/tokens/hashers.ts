import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { fail, integer, validateOptions } from '../internal/options.js';
import { BcryptPool } from './bcrypt-pool.js';
import { keyedSeal } from './seal.js';

/**
 * Turns a token's secret material into what the store keeps, and checks it back.
 * Implement it to plug in another algorithm; `verify` must compare in constant time.
 * @example
 * const hasher: TokenHasher = {
 *   name: 'argon2',
 *   slow: true,
 *   hash: (m) => argon2.hash(m),
 *   verify: (m, s) => argon2.verify(s, m),
 * };
 */
export interface TokenHasher {
  /** Short name, for logs and diagnostics. */
  readonly name: string;
  /** True for deliberately slow hashes: the gate then bounds and queues checks fairly. */
  readonly slow: boolean;
  /** What the store keeps for `material` (the token's id and secret); never the material itself. */
  hash(material: string): Promise<string>;
  /** True when `material` matches `stored`; compares in constant time. */
  verify(material: string, stored: string): Promise<boolean>;
  /**
   * Optional, for slow hashers: a cheap pre-check. `false` when `material` certainly does not
   * match `stored`; `true` when it passes (it may still not match); `undefined` when `stored`
   * carries no check. Lets the gate refuse forged attempts against a known token id without
   * slow work, and run the slow check for the real token even while its id is under attack.
   */
  quickCheck?(material: string, stored: string): boolean | undefined;
  /**
   * Optional: a MAC of `data` under a server-side secret that the store never sees (the
   * pepper). Records are sealed with it, so a direct write to the store cannot change what a
   * token may do (docs/security.md). Without it records are sealed under a public key, which
   * protects against nothing deliberate.
   */
  seal?(data: string): string;
  /** Optional: releases threads or other resources. */
  close?(): Promise<void>;
}

/**
 * Options of `sha256Hasher` (the gate's `pepper` does the same).
 * @example
 * import { readFileSync } from 'node:fs';
 * const options: Sha256HasherOptions = { pepper: readFileSync('/run/secrets/token-pepper') };
 * createTokenGate({ hasher: sha256Hasher(options) });
 */
export interface Sha256HasherOptions {
  /**
   * Server-side secret mixed into every hash (HMAC key), kept out of the store, so a stolen
   * store dump cannot be checked offline. Default: a fixed public key (plain keyed SHA-256).
   */
  pepper?: string | Buffer;
}

const SHA256_TAG = 'hmac-sha256$';
const DEFAULT_PEPPER = 'express-api-tokens';

const pepperCheck = (value: unknown, path: string) => {
  if ((typeof value !== 'string' && !Buffer.isBuffer(value)) || value.length === 0)
    fail(path, 'must be a non-empty string or Buffer');
};

/**
 * HMAC-SHA256, the default. Tokens carry 256 random bits, so a fast keyed hash is safe at rest.
 * @example createTokenGate({ hasher: sha256Hasher({ pepper: process.env['TOKEN_PEPPER'] ?? 'dev' }) })
 */
export function sha256Hasher(options: Readonly<Sha256HasherOptions> = {}): TokenHasher {
  validateOptions<Sha256HasherOptions>(options, { pepper: pepperCheck });
  const pepper = options.pepper ?? DEFAULT_PEPPER;
  const digest = (material: string) => createHmac('sha256', pepper).update(material).digest();
  return {
    name: 'sha256',
    slow: false,
    // The default pepper is public: it seals nothing an attacker could not seal too.
    ...(options.pepper === undefined ? {} : { seal: keyedSeal(options.pepper) }),
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

/**
 * Options of `bcryptHasher`.
 * @example
 * const options: BcryptHasherOptions = { cost: 12, threads: 4 };
 * createTokenGate({ hasher: bcryptHasher(options) });
 */
export interface BcryptHasherOptions {
  /** bcrypt cost factor, 4 to 31. Default 10 (about 86 ms a check in pure JS). */
  cost?: number;
  /**
   * Worker threads that run bcrypt, so a check never blocks the event loop. Default 2;
   * 0 runs bcrypt on the main thread (bcryptjs yields every few milliseconds, but a check
   * still holds the loop for most of its time).
   */
  threads?: number;
  /**
   * Server-side secret that seals token records (bcrypt hashes need none, but without it a
   * direct write to the store can change what a token may do, or add a token). Kept out of the
   * store. Default: none (records sealed under a public key).
   */
  pepper?: string | Buffer;
}

/**
 * Stored as `bcrypt$<check>$<bcrypt hash>`. The check is 16 bits of SHA-256 of the material:
 * it refuses 65,535 of 65,536 forged attempts against a known token id without running bcrypt,
 * while revealing nothing useful about a 256-bit secret. Plain bcrypt hashes (`$2…`) from
 * earlier versions are still verified, without the quick check.
 */
const BCRYPT_TAG = 'bcrypt$';

function quickCheck(material: string): string {
  return createHash('sha256').update(material).digest('hex').slice(0, 4);
}

/**
 * bcrypt (bcryptjs, in worker threads), for policies that demand a slow hash. The gate's cache
 * keeps requests fast; checks are bounded and queued fairly between clients.
 * @example createTokenGate({ hasher: bcryptHasher({ cost: 12 }) })
 */
export function bcryptHasher(options: Readonly<BcryptHasherOptions> = {}): TokenHasher {
  validateOptions<BcryptHasherOptions>(options, {
    cost: integer(4, 31),
    threads: integer(0, 64),
    pepper: pepperCheck,
  });
  const cost = options.cost ?? 10;
  const pool = new BcryptPool(options.threads ?? 2);
  const split = (stored: string): { check: string | null; bcrypt: string } | null => {
    if (stored.startsWith('$2')) return { check: null, bcrypt: stored };
    if (!stored.startsWith(BCRYPT_TAG)) return null;
    const end = stored.indexOf('$', BCRYPT_TAG.length);
    return end < 0 ? null : { check: stored.slice(BCRYPT_TAG.length, end), bcrypt: stored.slice(end + 1) };
  };
  return {
    name: 'bcrypt',
    slow: true,
    ...(options.pepper === undefined ? {} : { seal: keyedSeal(options.pepper) }),
    async hash(material) {
      return `${BCRYPT_TAG}${quickCheck(material)}$${await pool.hash(material, cost)}`;
    },
    quickCheck(material, stored) {
      const parts = split(stored);
      if (parts === null) return false;
      return parts.check === null ? undefined : parts.check === quickCheck(material);
    },
    async verify(material, stored) {
      const parts = split(stored);
      if (parts === null || (parts.check !== null && parts.check !== quickCheck(material))) return false;
      // bcryptjs compares the computed and stored hashes in constant time.
      return pool.compare(material, parts.bcrypt);
    },
    close: () => pool.close(),
  };
}

/** Resolves the `hasher` option: a name or a ready `TokenHasher`. */
export function resolveHasher(
  hasher: 'sha256' | 'bcrypt' | TokenHasher | undefined,
  pepper?: string | Buffer,
): TokenHasher {
  if (hasher === undefined || hasher === 'sha256')
    return sha256Hasher(pepper === undefined ? {} : { pepper });
  if (hasher === 'bcrypt') return bcryptHasher(pepper === undefined ? {} : { pepper });
  if (pepper !== undefined)
    throw new TypeError(
      "`pepper` applies to the 'sha256' and 'bcrypt' hashers; give your own hasher a `seal` instead",
    );
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
