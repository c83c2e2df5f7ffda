/**
 * One instruction count per request, for quick A/B work: `node --import tsx bench/measure.ts
 * <variant> [requests]` runs `bench/server.ts <variant>` under callgrind (20,000 requests by
 * default: two runs then agree within about 0.5 %).
 */
import { instructionsPerRequest } from './callgrind.js';

const [variant = 'memory', requests = '20000', redisUrl] = process.argv.slice(2);
const count = await instructionsPerRequest(
  ['node', '--import', 'tsx', 'bench/server.ts', variant, ...(redisUrl ? [redisUrl] : [])],
  { requests: Number(requests) },
);
console.log(`${variant}: ${count.toLocaleString('en')} instructions per request`);
