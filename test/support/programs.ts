import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CHROMIUM_PATH } from './chromium-path.js';
import { postgresBinaries } from './postgres-server.js';

/**
 * The programs the tests run, each with the Debian package that provides it and what in a test
 * file's source means that file needs it. scripts/install-test-deps.sh installs them all.
 */
export interface Program {
  /** What the message names. */
  name: string;
  /** The Debian/Ubuntu package. */
  debian: string;
  /** Whether it is there (a file on PATH, or at its configured place). */
  present: () => boolean;
  /** Whether a test file's source needs it. */
  neededBy: (source: string) => boolean;
}

export function onPath(command: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this one
    }
  }
  return false;
}

// The demo upstream serves its repository with `git http-backend`: every file starting the example needs git.
const STARTS_DEMO = /examples\/(bitbucket-proxy|demo-upstream)/;

export const PROGRAMS: readonly Program[] = [
  {
    name: 'redis-server',
    debian: 'redis-server',
    present: () => onPath('redis-server'),
    neededBy: (source) => /support\/redis-(server|sentinel|cluster)/.test(source),
  },
  {
    name: 'initdb and pg_ctl (PostgreSQL server binaries under /usr/lib/postgresql)',
    debian: 'postgresql',
    present: () => postgresBinaries() !== undefined,
    neededBy: (source) => source.includes('support/postgres-server'),
  },
  {
    name: `chromium (at ${CHROMIUM_PATH}; CHROMIUM_PATH overrides)`,
    debian: 'chromium',
    present: () => {
      try {
        accessSync(CHROMIUM_PATH, constants.X_OK);
        return existsSync(CHROMIUM_PATH);
      } catch {
        return false;
      }
    },
    neededBy: (source) => source.includes('support/browser'),
  },
  {
    name: 'git',
    debian: 'git',
    present: () => onPath('git'),
    neededBy: (source) =>
      STARTS_DEMO.test(source) || /\b(execFile|execFileSync|spawn)\(\s*'git'/.test(source),
  },
  {
    name: 'curl',
    debian: 'curl',
    present: () => onPath('curl'),
    neededBy: (source) => STARTS_DEMO.test(source) || /['`"]curl\b/.test(source),
  },
  {
    name: 'git-credential-oauth',
    debian: 'git-credential-oauth',
    present: () => onPath('git-credential-oauth'),
    neededBy: (source) => source.includes('git-credential-oauth'),
  },
];

/** One line per missing program: what it is and the package that brings it. */
export function missingLine(program: Program): string {
  return `missing: ${program.name} — install the Debian package ${program.debian}`;
}
