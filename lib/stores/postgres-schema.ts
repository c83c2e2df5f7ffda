import { DEFAULT_TABLE_PREFIX } from '../defaults.js';
import { string } from '../internal/options.js';
import { IDENTIFIER, quote, RESTRICTED } from './sql-record.js';

/** The schema version this release writes; older ones are upgraded by `ensureSchema()`. */
export const POSTGRES_SCHEMA_VERSION = 4;

/**
 * Where `PostgresTokenStore` keeps its tables.
 * @example
 * const names: PostgresSchemaOptions = { schema: 'api_tokens', tablePrefix: 'proxy_' };
 * const sql = PostgresTokenStore.schemaSql(names);
 */
export interface PostgresSchemaOptions {
  /** Schema (namespace) of the tables. Default `'public'`. Letters, digits, `_`; at most 30. */
  schema?: string;
  /** Prefix of the table and index names. Default `'bbt_'`. Letters, digits, `_`; at most 24. */
  tablePrefix?: string;
}

const schemaName = string({ maxLength: 30, pattern: IDENTIFIER });
const prefixName = string({ maxLength: 24, pattern: IDENTIFIER });

/** Checked and quoted names of everything the store creates; the only SQL text built from options. */
export function postgresNames(options: Readonly<PostgresSchemaOptions> = {}) {
  const schema = options.schema ?? 'public';
  const prefix = options.tablePrefix ?? DEFAULT_TABLE_PREFIX;
  schemaName(schema, 'schema');
  prefixName(prefix, 'tablePrefix');
  const table = (suffix: string) => `${quote(schema)}.${quote(`${prefix}${suffix}`)}`;
  return {
    schema,
    prefix,
    quotedSchema: quote(schema),
    version: table('schema_version'),
    versionName: `${schema}.${prefix}schema_version`,
    tokens: table('tokens'),
    failures: table('failures'),
    claims: table('claims'),
    groups: table('groups'),
    values: table('values'),
    /** Index names live in the table's schema, so they need no schema of their own. */
    index: (suffix: string) => quote(`${prefix}${suffix}`),
    /** NOTIFY channel of revocations (at most 62 bytes, under PostgreSQL's 63). */
    channel: `${schema}.${prefix}revoked`,
    /** Key of the advisory lock that serialises schema changes across processes. */
    lockKey: `express-api-tokens:${schema}.${prefix}`,
  };
}

export type PostgresNames = ReturnType<typeof postgresNames>;

/** Migration `i` takes the tables from version `i` to `i + 1`. Never edit one that has shipped: add the next. */
export function postgresMigrations(n: PostgresNames): string[] {
  return [
    `CREATE TABLE ${n.tokens} (
       id text COLLATE "C" PRIMARY KEY,
       user_name text NOT NULL,
       user_key text COLLATE "C" NOT NULL,
       name text NOT NULL,
       name_key text NOT NULL,
       scope text NOT NULL CHECK (scope IN ('read', 'write')),
       hash text NOT NULL,
       created_at bigint NOT NULL,
       created_by text NOT NULL,
       expires_at bigint,
       last_used_at bigint,
       last_used_ip text,
       allowed_ips jsonb,
       required_headers jsonb,
       resources jsonb,
       upstream text
     );
     CREATE INDEX ${n.index('tokens_user')} ON ${n.tokens} (user_key, created_at DESC, id DESC);
     CREATE INDEX ${n.index('tokens_created')} ON ${n.tokens} (created_at DESC, id DESC);
     CREATE INDEX ${n.index('tokens_expires')} ON ${n.tokens} (expires_at, id) WHERE expires_at IS NOT NULL;
     CREATE INDEX ${n.index('tokens_last_used')} ON ${n.tokens} (last_used_at);
     CREATE INDEX ${n.index('tokens_restricted')} ON ${n.tokens} (created_at DESC, id DESC) WHERE ${RESTRICTED};
     CREATE TABLE ${n.failures} (key text PRIMARY KEY, count integer NOT NULL, until bigint NOT NULL);
     CREATE INDEX ${n.index('failures_until')} ON ${n.failures} (until);
     CREATE TABLE ${n.claims} (key text PRIMARY KEY, until bigint NOT NULL);
     CREATE INDEX ${n.index('claims_until')} ON ${n.claims} (until);`,
    // 2: counting groups (the per-user cap, counted atomically) and the record seal. The live
    // rows of version 1 are counted in their owners' groups here, once.
    `ALTER TABLE ${n.tokens} ADD COLUMN count_group text COLLATE "C";
     ALTER TABLE ${n.tokens} ADD COLUMN seal text;
     CREATE INDEX ${n.index('tokens_group')} ON ${n.tokens} (count_group, expires_at) WHERE count_group IS NOT NULL;
     CREATE TABLE ${n.groups} (group_key text COLLATE "C" PRIMARY KEY, live integer NOT NULL);
     UPDATE ${n.tokens} SET count_group = 'user:' || user_key
       WHERE expires_at IS NULL OR expires_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
     INSERT INTO ${n.groups} (group_key, live)
       SELECT count_group, count(*) FROM ${n.tokens} WHERE count_group IS NOT NULL GROUP BY count_group;`,
    // 3: how a token was issued (OAuth, federation); keyed values (OAuth codes, refresh families).
    `ALTER TABLE ${n.tokens} ADD COLUMN origin jsonb;
     CREATE TABLE ${n.values} (key text PRIMARY KEY, value text NOT NULL, until bigint NOT NULL);
     CREATE INDEX ${n.index('values_until')} ON ${n.values} (until);`,
    // 4: per-token rate limits.
    `ALTER TABLE ${n.tokens} ADD COLUMN rate_limit jsonb;`,
  ];
}

/**
 * The whole schema as SQL, for DBAs who create it themselves (then open the store with
 * `createSchema: false`). Idempotent only on an empty schema: run it once.
 * @example
 * console.log(PostgresTokenStore.schemaSql({ schema: 'tokens' })); // the public way to it
 */
export function postgresSchemaSql(options: Readonly<PostgresSchemaOptions> = {}): string {
  const n = postgresNames(options);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${n.quotedSchema};`,
    ...postgresMigrations(n).map((sql) => `${sql.replace(/\n {5}/g, '\n')}`),
    `CREATE TABLE ${n.version} (version integer NOT NULL);`,
    `INSERT INTO ${n.version} (version) VALUES (${POSTGRES_SCHEMA_VERSION});`,
    '',
  ].join('\n');
}
