/**
 * Opens a SQLite token store from a URL and writes to it, for the file-mode tests (run it under
 * `umask 000`). Prints `READY` once the database, its -wal and -shm files exist, and closes the
 * store when its stdin ends. Usage: node --import tsx test/support/private-files-worker.ts <sqlite: URL>
 */
import { writeSync } from 'node:fs';
import { openTokenStore } from '../../lib/stores/open-token-store.js';
import { makeRecord } from '../../lib/testing/index.js';

const opened = await openTokenStore(process.argv[2]!);
await opened.store.put(makeRecord({ user: 'alice' }));
writeSync(1, `READY ${process.umask().toString(8)}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void opened.close().then(() => process.exit(0));
});
