import type { TestProject } from 'vitest/node';
import { missingPrograms } from './preflight.js';
import { selectedSources } from './selected-files.js';

/**
 * Before anything starts: every program the selected test files need must be there. Missing
 * ones end the run at once, one line each naming the program and its Debian package, instead
 * of failures or timeouts deep in the suites.
 */
export async function setup(project: TestProject): Promise<void> {
  const lines = await missingPrograms(await selectedSources(project));
  if (lines.length === 0) return;
  // Said and ended here: thrown, the lines would come after a misleading "No test files found".
  // Nothing has started yet (this is the first global setup), so nothing is left behind.
  process.stderr.write(`\n${lines.join('\n')}\n\n`);
  process.exit(1);
}
