import { instructionsPerRequest } from '/work/main/bench/callgrind.ts';
const flags = (process.env['FLAGS'] ?? '').split(' ').filter(Boolean);
for (let i = 0; i < Number(process.env["RUNS"] ?? 3); i++) {
  const n = await instructionsPerRequest(['node', ...flags, '--import', 'tsx', 'bench/step-server.ts', process.env['N'] ?? '0'], { requests: Number(process.env['REQ'] ?? 5000) });
  console.log(process.env['FLAGS'], process.env['N'], n);
}
