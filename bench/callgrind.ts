/**
 * Instructions per request of an HTTP server, counted by valgrind's callgrind: the server runs
 * with counting off, gets a warm-up (so the JIT has settled), then counting is switched on for
 * exactly `requests` requests and the total is divided by them. Needs valgrind (Debian package
 * `valgrind`, which also provides `callgrind_control`).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface CallgrindOptions {
  /** Requests counted. Default 2,000. */
  requests?: number;
  /** Requests before counting starts. Default 3,000. */
  warmup?: number;
  /** Requests in flight at once. Default 8. */
  concurrency?: number;
  path?: string;
  /** Keep the dump (for callgrind_annotate) in this folder instead of deleting it. */
  keepDumpIn?: string;
}

/** Runs `command` (which prints `READY <port> <token>`) under callgrind; instructions per request. */
export async function instructionsPerRequest(
  command: string[],
  options: CallgrindOptions = {},
): Promise<number> {
  const { requests = 2_000, warmup = 3_000, concurrency = 8, path = '/rest/api/1.0/projects' } = options;
  const dir = options.keepDumpIn ?? mkdtempSync(join(tmpdir(), 'callgrind-'));
  const child = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${dir}/out.%p`, ...command],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4_000);
  });
  try {
    const { port, token } = await new Promise<{ port: number; token: string }>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no READY within 120 s\n${log}`)), 120_000);
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const ready = /READY (\d+) (\S+)/.exec(out);
        if (ready) {
          clearTimeout(timer);
          resolve({ port: Number(ready[1]), token: ready[2]! });
        }
      });
      child.once('exit', (code) => reject(new Error(`server exited (${code}) before READY\n${log}`)));
    });
    child.stdout.resume();
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    const headers = token === '-' ? {} : { authorization: `Bearer ${token}` };
    let failures = 0;
    const load = async (count: number) => {
      let left = count;
      const one = () =>
        new Promise<void>((done) => {
          const req = get({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
            if ((res.statusCode ?? 500) >= 400) failures++;
            res.resume();
            res.on('end', done);
          });
          req.on('error', () => {
            failures++;
            done();
          });
        });
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (left-- > 0) await one();
        }),
      );
    };
    const control = (...args: string[]) => exec('callgrind_control', [...args, String(child.pid)]);
    await load(warmup);
    await control('-i', 'on');
    await load(requests);
    await control('-i', 'off');
    await control('-d');
    agent.destroy();
    if (failures > 0) throw new Error(`${failures} requests failed or were refused`);
    const dumps = readdirSync(dir).filter((f) => /\.\d+\.\d+$/.test(f) || /out\.\d+\.\d+/.test(f));
    const totals = dumps.map((f) =>
      Number(/^totals: (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'))?.[1] ?? 0),
    );
    const total = Math.max(0, ...totals);
    if (total === 0) throw new Error(`no callgrind dump was read in ${dir}`);
    return Math.round(total / requests);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)));
    if (options.keepDumpIn === undefined) rmSync(dir, { recursive: true, force: true });
  }
}
