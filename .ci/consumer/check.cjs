// The packed package from CommonJS: every `exports` entry loads through require(), the gate
// round-trips a token.
const pkg = require('express-api-tokens/package.json');
const skipped = new Set((process.env.SKIP_ENTRIES ?? '').split(' ').filter(Boolean));
const loaded = [];
for (const [subpath, conditions] of Object.entries(pkg.exports)) {
  // An ESM-only entry (the testing one, like vitest itself) has no `require` condition.
  if (subpath === './package.json' || skipped.has(subpath) || !conditions.require) continue;
  const specifier = `express-api-tokens${subpath.slice(1)}`;
  const entry = require(specifier);
  if (!Object.values(entry).some((value) => typeof value === 'function'))
    throw new Error(`${specifier} exports no function`);
  loaded.push(specifier);
}

const { createTokenGate, MemoryTokenStore, RedisTokenStore } = require('express-api-tokens');
if (typeof RedisTokenStore !== 'function' || typeof MemoryTokenStore !== 'function')
  throw new Error('the stores are missing');
const gate = createTokenGate();
gate.tokens
  .create({ user: 'ci', name: 'pack', scope: 'read' })
  .then(({ token }) => gate.tokens.verify(token))
  .then(async (info) => {
    if (!info) throw new Error('a fresh token does not verify');
    await gate.close();
    console.log(`CommonJS: ok (${loaded.join(', ')})`);
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
