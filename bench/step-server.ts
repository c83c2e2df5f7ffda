/**
 * A bench server running only the first N steps of the request path, built from the exported
 * middlewares with the options `bench/server.ts` gives the gate: `bench/step-costs.ts` runs it
 * for N = 0…all under callgrind, and the differences are what each step costs.
 * Usage: node --import tsx bench/step-server.ts <N>. Prints `READY <port> <bearer token>`.
 */
import type { AddressInfo } from 'node:net';
import express, { type RequestHandler } from 'express';
import { compose } from '../lib/internal/compose.js';
import { library } from './load-library.js';

const {
  authenticateToken,
  clientIp,
  extractCredentials,
  forwardIdentity,
  ipAllowlist,
  MemoryTokenStore,
  requireGroups,
  requireScope,
  sha256Hasher,
  staticGroups,
  TokenService,
  tokenRestrictions,
} = library;

// In the order of `bench/step-costs.ts`'s STEP_NAMES.
const count = Number(process.argv[2] ?? 8);
const tokens = new TokenService({ store: new MemoryTokenStore(), hasher: sha256Hasher() });
const steps: RequestHandler[] = [
  clientIp(),
  extractCredentials(),
  ipAllowlist({ allow: ['127.0.0.0/8', '10.0.0.0/8', '2001:db8::/32'] }),
  authenticateToken({ tokens }),
  tokenRestrictions(),
  requireGroups({ groups: ['api-users'], resolver: staticGroups({ alice: ['api-users'] }) }),
  requireScope(),
  forwardIdentity(),
].slice(0, count);

// One middleware, as `gate.protect()` composes its steps: every Express layer costs on its own.
const composed = compose(steps);
const app = express();
app.disable('x-powered-by');
app.use(composed);
app.get('/rest/api/1.0/projects', (req, res) => {
  res.json({ size: 1, values: [{ key: 'PROJ', user: req.headers['x-forwarded-user'] ?? null }] });
});
const { token } = await tokens.create({ user: 'alice', name: 'bench', scope: 'read' });
const server = app.listen(0, '127.0.0.1', () => {
  console.log(`READY ${(server.address() as AddressInfo).port} ${token}`);
});
process.on('SIGINT', () => process.exit(0));
