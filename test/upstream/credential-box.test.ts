import { randomBytes } from 'node:crypto';
import { compactDecrypt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { UnavailableError } from '../../lib/errors.js';
import { CredentialBox, type UpstreamCredential } from '../../lib/upstream/credential-box.js';

const credential: UpstreamCredential = {
  token: 'MTIzNDU2Nzg5MDEyOnNlY3JldC1ieXRlcy1oZXJl',
  tokenId: '123456789012',
  user: 'Alice',
  slug: 'alice',
  ours: 'a1B2c3D4e5F',
  expiresAt: null,
  origin: 'minted',
};
const record = (upstream: string, id = 'a1B2c3D4e5F', user = 'alice') => ({ id, user, upstream });

describe('CredentialBox', () => {
  it('seals with JWE dir + A256GCM under the first key id, and opens it again', async () => {
    const box = new CredentialBox([{ id: 'k1', key: randomBytes(32) }]);
    const sealed = await box.seal(credential);
    expect(decodeProtectedHeader(sealed)).toEqual({ alg: 'dir', enc: 'A256GCM', kid: 'k1' });
    expect(sealed).not.toContain(credential.token);
    expect(sealed).not.toContain(credential.tokenId);
    expect(await box.open(record(sealed))).toEqual(credential);
  });

  it('rotates keys: the first key seals, every key opens', async () => {
    const old = { id: 'old', key: randomBytes(32) };
    const sealedWithOld = await new CredentialBox([old]).seal(credential);
    const rotated = new CredentialBox([{ id: 'new', key: randomBytes(32).toString('base64') }, old]);
    expect(await rotated.open(record(sealedWithOld))).toEqual(credential);
    expect(decodeProtectedHeader(await rotated.seal(credential)).kid).toBe('new');
  });

  it('accepts base64 and base64url text keys', () => {
    const bytes = randomBytes(32);
    expect(() => new CredentialBox([{ id: 'a', key: bytes.toString('base64') }])).not.toThrow();
    expect(() => new CredentialBox([{ id: 'a', key: bytes.toString('base64url') }])).not.toThrow();
  });

  it.each([
    [[], /`encryptionKeys` must list at least one key/],
    [[{ id: 'a', key: randomBytes(16) }], /`encryptionKeys\[0\]\.key` must be 32 random bytes.*it has 16/],
    [[{ id: 'a', key: 'not base64!' }], /`encryptionKeys\[0\]\.key` must be 32 random bytes/],
    [[{ id: 'a', key: randomBytes(48).toString('base64') }], /it has 48/],
    [[{ id: '', key: randomBytes(32) }], /`encryptionKeys\[0\]\.id`/],
    [[{ id: 'has space', key: randomBytes(32) }], /`encryptionKeys\[0\]\.id`/],
    [
      [
        { id: 'a', key: randomBytes(32) },
        { id: 'a', key: randomBytes(32) },
      ],
      /`encryptionKeys\[1\]\.id` repeats/,
    ],
    [[{ id: 'a', key: randomBytes(32), kid: 'x' }], /Unknown option `encryptionKeys\[0\]\.kid`/],
  ])('refuses a bad key ring at startup: %#', (keys, message) => {
    expect(() => new CredentialBox(keys as never)).toThrow(message);
  });

  it('never shows the key in a startup error', () => {
    const key = randomBytes(31).toString('base64');
    expect(() => new CredentialBox([{ id: 'a', key }])).toThrow(/it has 31/);
    try {
      new CredentialBox([{ id: 'a', key }]);
    } catch (err) {
      expect((err as Error).message).not.toContain(key);
    }
  });

  it('answers 503 UPSTREAM_CREDENTIAL_UNAVAILABLE for a wrong or unknown key, without the secret', async () => {
    const sealed = await new CredentialBox([{ id: 'k1', key: randomBytes(32) }]).seal(credential);
    for (const box of [
      new CredentialBox([{ id: 'k1', key: randomBytes(32) }]),
      new CredentialBox([{ id: 'k2', key: randomBytes(32) }]),
    ]) {
      const error = await box.open(record(sealed)).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(UnavailableError);
      expect(error).toMatchObject({ code: 'UPSTREAM_CREDENTIAL_UNAVAILABLE', status: 503 });
      expect(JSON.stringify({ message: (error as Error).message })).not.toContain(credential.token);
    }
  });

  it('refuses a sealed credential moved to another token or user, and tampered text', async () => {
    const box = new CredentialBox([{ id: 'k1', key: randomBytes(32) }]);
    const sealed = await box.seal(credential);
    await expect(box.open(record(sealed, 'zzzzzzzzzzz'))).rejects.toMatchObject({
      code: 'UPSTREAM_CREDENTIAL_UNAVAILABLE',
    });
    await expect(box.open(record(sealed, credential.ours, 'mallory'))).rejects.toMatchObject({
      code: 'UPSTREAM_CREDENTIAL_UNAVAILABLE',
    });
    const parts = sealed.split('.');
    parts[3] = `${parts[3]!.slice(0, -2)}AA`;
    await expect(box.open(record(parts.join('.')))).rejects.toMatchObject({
      code: 'UPSTREAM_CREDENTIAL_UNAVAILABLE',
    });
    // The user name binding is case-insensitive, as Bitbucket's user names are.
    expect((await box.open(record(sealed, credential.ours, 'ALICE'))).user).toBe('Alice');
  });

  it('cannot be opened by jose with any other key', async () => {
    const sealed = await new CredentialBox([{ id: 'k1', key: randomBytes(32) }]).seal(credential);
    await expect(compactDecrypt(sealed, randomBytes(32))).rejects.toThrow();
  });
});
