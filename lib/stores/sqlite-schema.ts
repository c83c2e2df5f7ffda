import { StoreError } from '../errors.js';
import { quote, RESTRICTED } from './sql-record.js';
import type { SqliteDatabaseLike } from './sqlite-types.js';

/** The schema version this release writes; files at a lower version are upgraded on open. */
export const SQLITE_SCHEMA_VERSION = 4;

/** Quoted names of the store's tables and indexes under one prefix. */
export function sqliteNames(prefix: string) {
  const name = (suffix: string) => quote(`${prefix}${suffix}`);
  return {
    version: name('schema_version'),
    tokens: name('tokens'),
    failures: name('failures'),
    claims: name('claims'),
    values: name('values'),
    revocations: name('revocations'),
    groups: name('groups'),
    index: name,
  };
}

type Names = ReturnType<typeof sqliteNames>;

/** Migration `i` takes a file from version `i` to `i + 1`. Never edit one that has shipped: add the next. */
function migrations(n: Names): string[] {
  return [
    // 1: tokens with their manager's indexes, failure windows, the revocation log.
    `CREATE TABLE ${n.tokens} (
       id TEXT PRIMARY KEY NOT NULL,
       user_name TEXT NOT NULL,
       user_key TEXT NOT NULL,
       name TEXT NOT NULL,
       name_key TEXT NOT NULL,
       scope TEXT NOT NULL CHECK (scope IN ('read', 'write')),
       hash TEXT NOT NULL,
       created_at INTEGER NOT NULL,
       created_by TEXT NOT NULL,
       expires_at INTEGER,
       last_used_at INTEGER,
       last_used_ip TEXT
     );
     CREATE INDEX ${n.index('tokens_user')} ON ${n.tokens} (user_key, created_at DESC, id DESC);
     CREATE INDEX ${n.index('tokens_created')} ON ${n.tokens} (created_at DESC, id DESC);
     CREATE INDEX ${n.index('tokens_expires')} ON ${n.tokens} (expires_at, id) WHERE expires_at IS NOT NULL;
     CREATE INDEX ${n.index('tokens_last_used')} ON ${n.tokens} (last_used_at);
     CREATE TABLE ${n.failures} (key TEXT PRIMARY KEY NOT NULL, count INTEGER NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;
     CREATE INDEX ${n.index('failures_until')} ON ${n.failures} (until);
     CREATE TABLE ${n.revocations} (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, at INTEGER NOT NULL);
     CREATE INDEX ${n.index('revocations_at')} ON ${n.revocations} (at);`,
    // 2: per-token restrictions and the upstream credential; claims (expiry reminders).
    `ALTER TABLE ${n.tokens} ADD COLUMN allowed_ips TEXT;
     ALTER TABLE ${n.tokens} ADD COLUMN required_headers TEXT;
     ALTER TABLE ${n.tokens} ADD COLUMN resources TEXT;
     ALTER TABLE ${n.tokens} ADD COLUMN upstream TEXT;
     CREATE INDEX ${n.index('tokens_restricted')} ON ${n.tokens} (created_at DESC, id DESC) WHERE ${RESTRICTED};
     CREATE TABLE ${n.claims} (key TEXT PRIMARY KEY NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;
     CREATE INDEX ${n.index('claims_until')} ON ${n.claims} (until);`,
    // 3: counting groups (the per-user cap, counted atomically) and the record seal. The live
    // rows of version 2 are counted in their owners' groups here, once.
    `ALTER TABLE ${n.tokens} ADD COLUMN count_group TEXT;
     ALTER TABLE ${n.tokens} ADD COLUMN seal TEXT;
     CREATE INDEX ${n.index('tokens_group')} ON ${n.tokens} (count_group, expires_at) WHERE count_group IS NOT NULL;
     CREATE TABLE ${n.groups} (group_key TEXT PRIMARY KEY NOT NULL, live INTEGER NOT NULL) WITHOUT ROWID;
     UPDATE ${n.tokens} SET count_group = 'user:' || user_key
       WHERE expires_at IS NULL OR expires_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
     INSERT INTO ${n.groups} (group_key, live)
       SELECT count_group, count(*) FROM ${n.tokens} WHERE count_group IS NOT NULL GROUP BY count_group;`,
    // 4: how a token was issued (OAuth, federation); keyed values (OAuth codes, refresh families).
    `ALTER TABLE ${n.tokens} ADD COLUMN origin TEXT;
     CREATE TABLE ${n.values} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;
     CREATE INDEX ${n.index('values_until')} ON ${n.values} (until);`,
  ];
}

/**
 * Brings the file to `target` (default: this release's version) in one IMMEDIATE transaction,
 * so processes opening the file together migrate it once. A file written by a newer release
 * is refused, naming both versions.
 */
export function migrateSqlite(
  db: SqliteDatabaseLike,
  prefix: string,
  file: string,
  target = SQLITE_SCHEMA_VERSION,
): void {
  const n = sqliteNames(prefix);
  const steps = migrations(n);
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS ${n.version} (version INTEGER NOT NULL)`);
    const row = db.prepare(`SELECT version FROM ${n.version}`).get() as { version: number } | undefined;
    const current = row?.version ?? 0;
    if (current > SQLITE_SCHEMA_VERSION) {
      throw new StoreError(
        `The token database ${file} has schema version ${current}, written by a newer express-api-tokens; ` +
          `this release reads schema version ${SQLITE_SCHEMA_VERSION} at most. Upgrade express-api-tokens.`,
      );
    }
    for (let version = current; version < target; version++) db.exec(steps[version]!);
    if (row === undefined) db.prepare(`INSERT INTO ${n.version} (version) VALUES (?)`).run(target);
    else if (current < target) db.prepare(`UPDATE ${n.version} SET version = ?`).run(target);
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}
