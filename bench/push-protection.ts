/**
 * What push protection costs: one `git push` of a commit with a large file of random
 * (incompressible) data, through `gate.protect()` + `forwardTo` to the demo Bitbucket (the real
 * `git http-backend`), with `pushProtection` on or off.
 *
 *   node --import tsx bench/push-protection.ts prepare <dir> [megabytes]   # once: the commit
 *   node --import tsx bench/push-protection.ts on|off <dir>                # one timed push
 *
 * Prints one JSON line: the push's wall time and the process's peak RSS (proxy and demo upstream
 * share it; git runs in its own processes). Pair runs with a process timer, or compare the
 * printed `pushMs` of alternating runs.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import express from 'express';
import { startDemoUpstream } from '../examples/demo-upstream.js';
import { forwardTo } from '../lib/forward/index.js';
import { createTokenGate } from '../lib/gate/create-token-gate.js';

const run = promisify(execFile);
const [mode, dir, megabytes = '50'] = process.argv.slice(2);
if (dir === undefined || !['prepare', 'on', 'off'].includes(mode ?? '')) {
  console.error('usage: push-protection.ts prepare|on|off <dir> [megabytes]');
  process.exit(2);
}
const git = (...args: string[]) =>
  run('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args], {
    cwd: dir,
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    maxBuffer: 1 << 24,
  });

if (mode === 'prepare') {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  await git('init', '-q');
  const out = createWriteStream(join(dir, 'random.bin'));
  for (let i = 0; i < Number(megabytes); i++)
    if (!out.write(randomBytes(1 << 20))) await new Promise<void>((r) => out.once('drain', () => r()));
  await new Promise((resolve) => out.end(resolve));
  await git('add', 'random.bin');
  await git('commit', '-q', '-m', `${megabytes} MB of random data`);
  // Packed once, so every push sends the same bytes without compressing them again.
  await git('repack', '-adq');
  console.log(JSON.stringify({ prepared: dir, megabytes: Number(megabytes) }));
  process.exit(0);
}

const upstream = await startDemoUpstream();
const gate = createTokenGate(mode === 'on' ? {} : { pushProtection: false });
const app = express();
app.use('/scm', gate.protect(), forwardTo(upstream.url));
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const { port } = server.address() as AddressInfo;
const { token } = await gate.tokens.create({ user: 'demo', name: 'bench', scope: 'write' });

const started = process.hrtime.bigint();
const pushed = await git(
  'push',
  `http://demo:${token}@127.0.0.1:${port}/scm/demo/repo.git`,
  'HEAD:refs/heads/bench',
);
const pushMs = Number(process.hrtime.bigint() - started) / 1e6;
const landed = await git('-C', join(upstream.root, 'demo', 'repo.git'), 'rev-parse', 'bench');
const head = await git('rev-parse', 'HEAD');
if (landed.stdout !== head.stdout) throw new Error(`the push did not land: ${pushed.stderr}`);
console.log(
  JSON.stringify({
    mode,
    pushMs: Math.round(pushMs),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
server.closeAllConnections();
server.close();
await gate.close();
await upstream.close();
