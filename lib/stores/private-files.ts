import { closeSync, mkdirSync, openSync } from 'node:fs';

/**
 * Files and directories the library creates hold token hashes, sealed credentials and failure
 * counts: they are the owner's only (0600, 0700), whatever the process umask says (a umask can
 * only take bits away, so asking for these modes at creation is enough, and race-free).
 */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Creates `dir` and any missing parents as 0700; directories that exist are left as they are. */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Creates `file` empty with mode 0600 unless it exists; true when it was created. SQLite then
 * opens it, and gives its `-wal` and `-shm` files the database file's mode.
 */
export function createPrivateFile(file: string): boolean {
  try {
    closeSync(openSync(file, 'wx', PRIVATE_FILE_MODE));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}
