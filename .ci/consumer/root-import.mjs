// What importing the package's root entry costs: time and heap against `express` alone, the
// packages and the bytes of our own files it loads, for ESM (import) and CommonJS (require).
// Fails when the root loads a package that only an optional feature needs.
//
//   node root-import.mjs [esm-specifier cjs-specifier] [--runs N]
// In a consumer project the specifiers default to `express-api-tokens`; `npm run bench:import`
// passes the repository's dist/ files.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FEATURE_ONLY = [
  'openid-client',
  'preact',
  'preact-render-to-string',
  'prom-client',
  'commander',
  'pg',
  'better-sqlite3',
  'ioredis',
  'nodemailer',
];
const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt === -1 ? 5 : Number(args.splice(runsAt, 2)[1]);
const [esm = 'express-api-tokens', cjs = 'express-api-tokens'] = args;

// One fresh process per measurement; `what` is 'express' (express alone) or 'root' (express, then
// ours). `trace` lists the ESM files loaded through a resolve hook, which slows every import: the
// timed runs go without it, one more run with it lists the files.
const child = (format, what, trace = false) => {
  const load =
    format === 'esm' ? (s) => `await import(${JSON.stringify(s)})` : (s) => `require(${JSON.stringify(s)})`;
  const program = `
    ${
      format === 'esm' && trace
        ? `require('node:module').register('data:text/javascript,' + encodeURIComponent(
      'import { appendFileSync } from "node:fs"; export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(process.env.ROOT_IMPORT_LOG, r.url + "\\\\n"); return r; }'));`
        : ''
    }
    (async () => {
      const t0 = performance.now();
      ${load('express')};
      const t1 = performance.now();
      ${what === 'root' ? (format === 'esm' ? load(esm) : load(cjs)) : ''};
      const t2 = performance.now();
      gc(); gc();
      const files = Object.keys(require.cache);
      console.log(JSON.stringify({ ms: t2 - t0, heap: process.memoryUsage().heapUsed, files }));
    })();`;
  const log = `${process.env.TMPDIR ?? '/tmp'}/root-import-${process.pid}-${Math.random().toString(36).slice(2)}.log`;
  const out = execFileSync(process.execPath, ['--expose-gc', '--no-warnings', '-e', program], {
    env: { ...process.env, ROOT_IMPORT_LOG: log },
    encoding: 'utf8',
  });
  const result = JSON.parse(out.trim().split('\n').pop());
  let esmFiles = [];
  if (existsSync(log)) {
    esmFiles = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    rmSync(log);
  }
  const all = new Set([
    ...result.files,
    ...esmFiles.filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u)),
  ]);
  return { ms: result.ms, heap: result.heap, files: [...all] };
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const packageOf = (file) =>
  file
    .match(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)
    ?.pop()
    ?.slice('node_modules/'.length);
let failed = false;
for (const format of ['esm', 'cjs']) {
  const bare = Array.from({ length: runs }, () => child(format, 'express'));
  const root = Array.from({ length: runs }, () => child(format, 'root'));
  const before = new Set(child(format, 'express', true).files);
  const added = child(format, 'root', true).files.filter((f) => !before.has(f));
  const packages = [...new Set(added.map(packageOf).filter((p) => p && p !== 'express-api-tokens'))].sort();
  const ours = added.filter((f) => !packageOf(f) || packageOf(f) === 'express-api-tokens');
  const bytes = ours.reduce((sum, f) => sum + statSync(f).size, 0);
  const ms = median(root.map((r) => r.ms)) - median(bare.map((r) => r.ms));
  const heap = median(root.map((r) => r.heap)) - median(bare.map((r) => r.heap));
  console.log(
    `${format === 'esm' ? 'ESM      ' : 'CommonJS '} root import: +${ms.toFixed(1)} ms, +${(heap / 1e6).toFixed(2)} MB heap over express alone` +
      ` (median of ${runs}); ${ours.length} files of ours, ${(bytes / 1024).toFixed(0)} KB; packages: ${packages.join(', ') || 'none'}`,
  );
  const wrong = packages.filter((p) => FEATURE_ONLY.includes(p));
  if (wrong.length > 0) {
    console.error(`  the root entry loads ${wrong.join(', ')}: only the features that need them may`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
