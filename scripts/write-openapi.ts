/**
 * Writes the management API's OpenAPI document to docs/ and the TypeScript types that
 * openapi-typescript generates from it (the typed client's, in test/support/). A test fails
 * when either is not what the code answers: run this after changing the API.
 *
 *   node --import tsx scripts/write-openapi.ts
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openApiFiles } from './openapi-files.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
for (const [path, contents] of Object.entries(await openApiFiles())) {
  writeFileSync(join(root, path), contents);
  console.log(`wrote ${path}`);
}
