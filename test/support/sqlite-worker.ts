/**
 * Another process on the same SQLite file, for the cross-process tests.
 * Usage: node --import tsx test/support/sqlite-worker.ts <file> <command> [args…]
 * - `create-and-die <user>`: creates a token, writes it to stdout, then SIGKILLs itself at once.
 * - `revoke <id>`: revokes, then prints `REVOKED`.
 * - `share <key> <n> <prefix> <m>`: counts n failures under key, then claims keys
 *   prefix0…prefix(m-1); prints the keys it won as JSON.
 */
import { writeSync } from 'node:fs';
import { SqliteTokenStore } from '../../lib/stores/sqlite-token-store.js';
import { sha256Hasher } from '../../lib/tokens/hashers.js';
import { TokenService } from '../../lib/tokens/service.js';

const [file, command, ...args] = process.argv.slice(2);
const store = new SqliteTokenStore({ path: file! });
const tokens = new TokenService({
  store,
  hasher: sha256Hasher({ pepper: 'test-pepper' }),
  tokenPrefix: 'bbt',
  cache: { maxEntries: 0 },
});

switch (command) {
  case 'create-and-die': {
    const { token } = await tokens.create({ user: args[0]!, name: 'durable', scope: 'read' });
    writeSync(1, `TOKEN ${token}\n`);
    process.kill(process.pid, 'SIGKILL');
    break;
  }
  case 'revoke':
    await tokens.revoke(args[0]!);
    console.log('REVOKED');
    break;
  case 'share': {
    const [key, counts, prefix, claims] = args;
    for (let i = 0; i < Number(counts); i++) await store.countFailure(key!, 60_000);
    const won: string[] = [];
    for (let i = 0; i < Number(claims); i++)
      if (await store.claim(`${prefix}${i}`, 60_000)) won.push(`${prefix}${i}`);
    console.log(JSON.stringify(won));
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
await store.close();
