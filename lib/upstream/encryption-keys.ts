// The key ring's shape and checks, apart from the encryption itself: `bitbucketAccessTokens()`
// checks its keys at startup, the encryption loads with access-token mode (see access-token-mode.ts).

/**
 * One key of the ring that encrypts Bitbucket tokens at rest.
 * @example
 * import { randomBytes } from 'node:crypto';
 * // Keep it outside the store, the same on every instance.
 * const key: EncryptionKey = { id: '2026-11', key: randomBytes(32) };
 */
export interface EncryptionKey {
  /** Names the key in each ciphertext (`kid`), so old keys keep decrypting after a new one is added. 1–64 of `A-Za-z0-9._-`. */
  id: string;
  /** 32 random bytes: a Buffer/Uint8Array, or their base64 / base64url text (`openssl rand -base64 32`). */
  key: Uint8Array | string;
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

function keyBytes(value: unknown, path: string): Buffer {
  let bytes: Buffer | undefined;
  if (value instanceof Uint8Array) bytes = Buffer.from(value);
  else if (typeof value === 'string' && BASE64.test(value.trim()))
    bytes = Buffer.from(value.trim(), value.includes('-') || value.includes('_') ? 'base64url' : 'base64');
  // The key itself never appears in the message.
  if (bytes === undefined || bytes.length !== 32)
    throw new TypeError(
      `\`${path}\` must be 32 random bytes (a Buffer, or base64 text such as \`openssl rand -base64 32\` prints)${bytes === undefined ? '' : `; it has ${bytes.length}`}`,
    );
  return bytes;
}

/** Parses and checks the key ring at startup; the first key encrypts. */
export function keyRing(keys: unknown, path: string): Map<string, Buffer> {
  if (!Array.isArray(keys) || keys.length === 0)
    throw new TypeError(`\`${path}\` must list at least one key: [{ id, key }]`);
  const all = new Map<string, Buffer>();
  for (const [i, entry] of keys.entries()) {
    const at = `${path}[${i}]`;
    if (typeof entry !== 'object' || entry === null) throw new TypeError(`\`${at}\` must be { id, key }`);
    const { id, key, ...rest } = entry as Record<string, unknown>;
    const unknown = Object.keys(rest)[0];
    if (unknown !== undefined) throw new TypeError(`Unknown option \`${at}.${unknown}\``);
    if (typeof id !== 'string' || !KEY_ID.test(id))
      throw new TypeError(`\`${at}.id\` must be 1 to 64 characters of A-Z a-z 0-9 . _ -`);
    if (all.has(id)) throw new TypeError(`\`${at}.id\` repeats the key id ${JSON.stringify(id)}`);
    all.set(id, keyBytes(key, `${at}.key`));
  }
  return all;
}
