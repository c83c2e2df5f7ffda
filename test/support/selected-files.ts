import { readFileSync } from 'node:fs';
import type { TestProject } from 'vitest/node';

/**
 * The sources of the test files this run will run (the command line's filters applied), so
 * that the global setup starts and demands only what they need. Read once per run.
 */
let cached: Promise<string[]> | undefined;
export function selectedSources(project: TestProject): Promise<string[]> {
  cached ??= (async () => {
    // Vitest keeps the command line's file filters here (not in its public types).
    const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern;
    const { testFiles } = await project.globTestFiles(filters);
    return testFiles.map((file) => readFileSync(file, 'utf8'));
  })();
  return cached;
}

/** Files that use the shared PostgreSQL (test/support/postgres.ts). */
export const usesSharedPostgres = (source: string) => /support\/postgres\.js/.test(source);
