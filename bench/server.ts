/**
 * The servers under load, in their own process (the load generator runs in the parent).
 * Usage: node --import tsx bench/server.ts <variant> <redisUrl?>
 * Variants: bare, memory, redis, bcrypt, jwt; `<variant>-metrics` adds `metrics: true`,
 * `<variant>-limited` a per-token rate limit no request reaches (the limiter's cost alone).
 * Prints `READY <port> <bearer token>` once listening.
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
import type { TokenGateOptions } from '../lib/index.js';
import { library } from './load-library.js';

const { createTokenGate, RedisTokenStore } = library;

const [variant = 'bare', redisUrl] = process.argv.slice(2);
const store = variant.replace(/-metrics$/, '').replace(/-limited$/, '');

const app = express();
app.disable('x-powered-by');
let token = '-';
let served = 0;

// CPU spent per request, read by the bench before and after a run (not behind protect()).
app.get('/__cpu', (_req, res) => {
  const { user, system } = process.cpuUsage();
  res.json({ cpuMicros: user + system, served });
});
app.use((_req, _res, next) => {
  served++;
  next();
});

if (variant !== 'bare') {
  const options: TokenGateOptions = {
    // The whole request path: token, IP allowlist, group check, scope check, identity.
    groups: { alice: ['api-users'] },
    permissions: { useTokens: ['api-users'] },
    ipAllowlist: ['127.0.0.0/8', '10.0.0.0/8', '2001:db8::/32'],
    ...(store === 'bcrypt' ? { hasher: 'bcrypt' as const } : {}),
    ...(store === 'jwt' ? { identity: { jwt: { key: 'bench-identity-jwt-secret-32-bytes!!' } } } : {}),
    ...(variant.endsWith('-metrics') ? { metrics: true } : {}),
    ...(variant.endsWith('-limited')
      ? { rateLimit: { perToken: { requests: 1e9, windowSeconds: 3_600 } } }
      : {}),
  };
  if (store === 'redis') {
    const redis = new Redis(redisUrl!, { enableOfflineQueue: false });
    await new Promise((resolve) => redis.once('ready', resolve));
    options.store = new RedisTokenStore({ redis, keyPrefix: `bench-${process.pid}` });
  }
  const gate = createTokenGate(options);
  // Wait until the store answers and its revocation feed is connected (the verified-token cache is trusted then).
  while (!(await gate.health()).ready) await new Promise((r) => setTimeout(r, 20));
  token = (await gate.tokens.create({ user: 'alice', name: 'bench', scope: 'read' })).token;
  app.use(gate.protect());
}

// What the upstream would answer; the same for every variant.
app.get('/rest/api/1.0/projects', (req, res) => {
  res.json({ size: 1, values: [{ key: 'PROJ', user: req.headers['x-forwarded-user'] ?? null }] });
});

const server = app.listen(0, '127.0.0.1', () => {
  console.log(`READY ${(server.address() as AddressInfo).port} ${token}`);
});
process.on('SIGINT', () => process.exit(0));
