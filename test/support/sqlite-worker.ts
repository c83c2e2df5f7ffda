/**
 * Another process on the same SQLite file, for the cross-process tests.
 * Usage: node --import tsx test/support/sqlite-worker.ts <file> <command> [args…]
 * - `create-and-die <user>`: creates a token, writes it to stdout, then SIGKILLs itself at once.
 * - `verify <token>`: prints `VALID <user>` or `INVALID`.
 * - `revoke <id>`: revokes, then prints `REVOKED`.
 * - `count <key> <n>`: counts n failures under key, prints `COUNTED`.
 * - `claim <n> <prefix>`: claims keys prefix0…prefix(n-1), prints the keys it won as JSON.
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
  case 'verify': {
    const info = await tokens.verify(args[0]!);
    console.log(info ? `VALID ${info.user}` : 'INVALID');
    break;
  }
  case 'revoke':
    await tokens.revoke(args[0]!);
    console.log('REVOKED');
    break;
  case 'count':
    for (let i = 0; i < Number(args[1]); i++) await store.countFailure(args[0]!, 60_000);
    console.log('COUNTED');
    break;
  case 'claim': {
    const won: string[] = [];
    for (let i = 0; i < Number(args[0]); i++)
      if (await store.claim(`${args[1]}${i}`, 60_000)) won.push(`${args[1]}${i}`);
    console.log(JSON.stringify(won));
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
await store.close();
