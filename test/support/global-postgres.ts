import type { TestProject } from 'vitest/node';
import { SHARED_POSTGRES_URL } from './postgres.js';
import { postgresAnswers } from './postgres-answers.js';
import { type PostgresServer, startPostgresServer } from './postgres-server.js';
import { selectedSources, usesSharedPostgres } from './selected-files.js';

let own: PostgresServer | undefined;

/**
 * Finds the PostgreSQL the suites share: PG_TEST_URL, else postgres://postgres@127.0.0.1:5432/test,
 * else (when a selected file needs it) a throwaway server this run starts from the installed
 * binaries (`initdb` + `pg_ctl` on a free port, as the `postgres` user under root) and removes
 * after. Its URL reaches the test files as PG_TEST_URL.
 */
export async function setup(project: TestProject): Promise<void> {
  const sources = await selectedSources(project);
  if (!sources.some(usesSharedPostgres) || (await postgresAnswers(SHARED_POSTGRES_URL))) return;
  const started = Date.now();
  try {
    own = await startPostgresServer();
  } catch (err) {
    const error = new Error(
      `PostgreSQL: nothing answers at ${SHARED_POSTGRES_URL} (set PG_TEST_URL) and a throwaway server did not start: ${
        (err as Error).message.split('\n')[0]
      }`,
    );
    error.stack = error.message;
    throw error;
  }
  // Workers start after the global setup and inherit this environment.
  process.env['PG_TEST_URL'] = own.url;
  console.log(
    `PostgreSQL: nothing answers at ${SHARED_POSTGRES_URL}; started a throwaway server at ${own.url} (${Date.now() - started} ms).`,
  );
}

export async function teardown(): Promise<void> {
  await own?.remove();
}
