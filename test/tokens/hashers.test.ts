import { describe, expect, it } from 'vitest';
import { bcryptHasher, resolveHasher, sha256Hasher } from '../../lib/tokens/hashers.js';

describe('sha256Hasher', () => {
  it('verifies what it hashed and nothing else', async () => {
    const hasher = sha256Hasher({ pepper: 'pepper' });
    const hash = await hasher.hash('material');
    expect(hash).toMatch(/^hmac-sha256\$/);
    expect(hash).not.toContain('material');
    expect(await hasher.verify('material', hash)).toBe(true);
    expect(await hasher.verify('materiaL', hash)).toBe(false);
    expect(await hasher.verify('material', 'hmac-sha256$short')).toBe(false);
    expect(await hasher.verify('material', '$2b$10$notours')).toBe(false);
  });

  it('depends on the pepper', async () => {
    const hash = await sha256Hasher({ pepper: 'one' }).hash('material');
    expect(await sha256Hasher({ pepper: 'two' }).verify('material', hash)).toBe(false);
  });

  it('refuses an empty pepper', () => {
    expect(() => sha256Hasher({ pepper: '' })).toThrow(/`pepper`/);
  });
});

describe('bcryptHasher', () => {
  it('verifies with bcrypt and is marked slow', async () => {
    const hasher = bcryptHasher({ cost: 4 });
    const hash = await hasher.hash('material');
    // A 16-bit quick check, then the bcrypt hash itself.
    expect(hash).toMatch(/^bcrypt\$[0-9a-f]{4}\$\$2[aby]\$04\$/);
    expect(hasher.slow).toBe(true);
    expect(await hasher.verify('material', hash)).toBe(true);
    expect(await hasher.verify('other', hash)).toBe(false);
    expect(await hasher.verify('material', 'hmac-sha256$x')).toBe(false);
  });

  it('refuses a cost outside 4..31', () => {
    expect(() => bcryptHasher({ cost: 3 })).toThrow(/`cost`/);
    expect(() => bcryptHasher({ cost: 10.5 })).toThrow(/`cost`/);
  });
});

describe('resolveHasher', () => {
  it('takes names and custom hashers, and refuses anything else', () => {
    expect(resolveHasher(undefined).name).toBe('sha256');
    expect(resolveHasher('bcrypt').name).toBe('bcrypt');
    const custom = sha256Hasher();
    expect(resolveHasher(custom)).toBe(custom);
    expect(() => resolveHasher('md5' as never)).toThrow(/`hasher`/);
  });
});
