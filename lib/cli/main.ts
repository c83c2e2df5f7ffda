#!/usr/bin/env node
/**
 * `express-api-tokens` (the package's `bin`): `npx express-api-tokens --help`.
 * Exit codes: lib/cli/exit-codes.ts and docs/operations.md.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitFor } from './exit-codes.js';
import { createProgram } from './program.js';

function packageVersion(): string {
  // The package's own package.json: the nearest one up from this file that names this package.
  const read = createRequire(import.meta.url);
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const found = read(join(dir, 'package.json')) as { name?: string; version?: string };
      if (found.name === 'express-api-tokens' && found.version) return found.version;
    } catch {
      // Not here: one level up.
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

// A reader that goes away (`… | head`) ends the output, not the run with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

createProgram(
  { env: process.env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin },
  packageVersion(),
)
  .parseAsync(process.argv)
  .then(
    () => 0,
    (err: unknown) => {
      const { code, message } = exitFor(err);
      if (message !== undefined) process.stderr.write(`express-api-tokens: ${message}\n`);
      return code;
    },
  )
  .then((code) => {
    process.exitCode = code;
    // Everything the run opened is closed by now; a driver's stray handle must not keep a shell waiting.
    setTimeout(() => process.exit(code), 2_000).unref();
  });
