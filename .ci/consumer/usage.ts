// What a strict TypeScript user writes with the packed package (checked as ESM and as CommonJS).
import express from 'express';
import {
  createTokenGate,
  MemoryTokenStore,
  staticGroups,
  type TokenGateOptions,
  type TokenInfo,
} from 'express-api-tokens';
import { type ForwardOptions, forwardTo } from 'express-api-tokens/forward';

const options: TokenGateOptions = {
  store: new MemoryTokenStore(),
  groups: staticGroups({ alice: ['developers'] }),
  permissions: { createWriteTokens: ['developers'] },
  blockPasswordAuth: true,
  expiry: { defaultDays: 30, maxDays: 90 },
  onEvent: (event) => console.log(event.type, event.time),
};
const gate = createTokenGate(options);
const forwarding: ForwardOptions = { timeoutMs: 30_000 };

const app = express();
app.use('/tokens', gate.router({ principal: (req) => req.get('x-user') }));
app.use(['/rest', '/scm'], gate.protect(), forwardTo('http://127.0.0.1:7990', forwarding));

export async function roundTrip(): Promise<TokenInfo | null> {
  const { token, info } = await gate.tokens.create({ user: 'alice', name: 'ci', scope: 'read' });
  const verified = await gate.tokens.verify(token);
  await gate.tokens.revoke(info.id);
  await gate.close();
  return verified;
}
