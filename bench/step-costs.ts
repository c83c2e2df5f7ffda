/**
 * `npm run bench:steps`: instructions each step of the request path adds, under callgrind — the
 * server with the first N steps for N = 0…all (`bench/step-server.ts`), 20,000 requests each
 * (a major GC is then spread thin: two runs agree within about 0.2 %), one run per N. For finding where
 * the request path's cost goes; `npm run bench:instructions` gives the headline figures.
 */
import { instructionsPerRequest } from './callgrind.js';

/** The steps of `bench/step-server.ts`, in order. */
const STEP_NAMES = [
  'clientIp',
  'extractCredentials',
  'ipAllowlist',
  'authenticateToken',
  'tokenRestrictions',
  'requireGroups',
  'requireScope',
  'forwardIdentity',
];

const REQUESTS = Number(process.env['BENCH_REQUESTS'] ?? 20_000);
let previous: number | undefined;
console.log('| Steps | Instructions per request | Added by the last step |');
console.log('| ----- | -----------------------: | ---------------------: |');
for (let n = 0; n <= STEP_NAMES.length; n++) {
  const count = await instructionsPerRequest(['node', '--import', 'tsx', 'bench/step-server.ts', String(n)], {
    requests: REQUESTS,
  });
  const name = n === 0 ? 'none (bare Express)' : `… ${STEP_NAMES[n - 1]}`;
  const added = previous === undefined ? '' : (count - previous).toLocaleString('en');
  console.log(`| ${name} | ${count.toLocaleString('en')} | ${added} |`);
  previous = count;
}
