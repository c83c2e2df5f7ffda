import { SHARED_POSTGRES_URL } from './postgres.js';
import { postgresAnswers } from './postgres-answers.js';
import { missingLine, PROGRAMS, type Program } from './programs.js';
import { redisAnswers } from './redis-server.js';
import { usesSharedPostgres } from './selected-files.js';

/**
 * What is missing for test files with these sources: one line per program they need (or that the
 * global setup needs to start a Redis or PostgreSQL nobody runs) that is not installed, each
 * naming its Debian package, then how to install them all. Empty when nothing is missing.
 */
export async function missingPrograms(sources: readonly string[]): Promise<string[]> {
  const needed = new Set<Program>(PROGRAMS.filter((p) => sources.some((source) => p.neededBy(source))));
  const [redisServer, postgres] = [PROGRAMS[0]!, PROGRAMS[1]!];
  if (!(await redisAnswers(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'))) needed.add(redisServer);
  if (sources.some(usesSharedPostgres) && !(await postgresAnswers(SHARED_POSTGRES_URL))) needed.add(postgres);
  const missing = PROGRAMS.filter((p) => needed.has(p) && !p.present());
  if (missing.length === 0) return [];
  return [
    ...missing.map(missingLine),
    'Install everything the tests need with: scripts/install-test-deps.sh (Debian/Ubuntu; it uses sudo)',
  ];
}
