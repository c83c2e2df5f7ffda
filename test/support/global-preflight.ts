import type { TestProject } from 'vitest/node';
import { SHARED_POSTGRES_URL } from './postgres.js';
import { postgresAnswers } from './postgres-answers.js';
import { missingLine, PROGRAMS, type Program } from './programs.js';
import { redisAnswers } from './redis-server.js';
import { selectedSources, usesSharedPostgres } from './selected-files.js';

/**
 * Before anything starts: every program the selected test files need (or that the global setup
 * needs to start a Redis or PostgreSQL nobody runs) must be there. Missing ones end the run at
 * once, one line each naming the program and its Debian package, instead of failures or
 * timeouts deep in the suites.
 */
export async function setup(project: TestProject): Promise<void> {
  const sources = await selectedSources(project);
  const needed = new Set<Program>(PROGRAMS.filter((p) => sources.some((source) => p.neededBy(source))));
  const [redisServer, postgres] = [PROGRAMS[0]!, PROGRAMS[1]!];
  if (!(await redisAnswers(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'))) needed.add(redisServer);
  if (sources.some(usesSharedPostgres) && !(await postgresAnswers(SHARED_POSTGRES_URL))) needed.add(postgres);
  const missing = PROGRAMS.filter((p) => needed.has(p) && !p.present());
  if (missing.length === 0) return;
  const lines = [
    ...missing.map(missingLine),
    'Install everything the tests need with: sudo scripts/install-test-deps.sh',
  ];
  // Said and ended here: thrown, the lines would come after a misleading "No test files found".
  // Nothing has started yet (this is the first global setup), so nothing is left behind.
  process.stderr.write(`\n${lines.join('\n')}\n\n`);
  process.exit(1);
}
