// The packed package from an ES module: every `exports` entry loads, the gate round-trips a
// token, and with REDIS_URL set the Redis store does too through the ioredis installed here.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const pkg = require('express-api-tokens/package.json');
const skipped = new Set((process.env.SKIP_ENTRIES ?? '').split(' ').filter(Boolean));
const loaded = [];
for (const subpath of Object.keys(pkg.exports)) {
  if (subpath === './package.json' || skipped.has(subpath)) continue;
  const specifier = `express-api-tokens${subpath.slice(1)}`;
  const entry = await import(specifier);
  if (!Object.values(entry).some((value) => typeof value === 'function'))
    throw new Error(`${specifier} exports no function`);
  loaded.push(specifier);
}

const { createTokenGate, RedisTokenStore, staticGroups } = await import('express-api-tokens');
const gate = createTokenGate({ groups: staticGroups({ ci: ['g'] }) });
const { token } = await gate.tokens.create({ user: 'ci', name: 'pack', scope: 'write' });
if (!(await gate.tokens.verify(token))) throw new Error('a fresh token does not verify');
await gate.close();

if (process.env.REDIS_URL) {
  const { Redis } = await import('ioredis');
  const redis = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 1 });
  const keyPrefix = `ci-pack-${randomBytes(4).toString('hex')}`;
  const redisGate = createTokenGate({ store: new RedisTokenStore({ redis, keyPrefix }) });
  const created = await redisGate.tokens.create({ user: 'ci', name: 'pack', scope: 'read' });
  if (!(await redisGate.tokens.verify(created.token)))
    throw new Error('Redis: a fresh token does not verify');
  await redisGate.tokens.revoke(created.info.id);
  if (await redisGate.tokens.verify(created.token)) throw new Error('Redis: a revoked token verifies');
  await redisGate.close();
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  loaded.push(`RedisTokenStore with ioredis ${require('ioredis/package.json').version}`);
}
console.log(`ESM: ok (${loaded.join(', ')})`);
