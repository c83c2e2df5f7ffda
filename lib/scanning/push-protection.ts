import { accessSync, constants, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Request } from 'express';
import { requestPath } from '../http/respond.js';
import { boolean, type Shape, string } from '../internal/options.js';
import type { Step } from '../request/step.js';
import { type PushProtectionParts, pushHolder } from './hold-push.js';

/**
 * Push protection (`pushProtection` of `createTokenGate`): every `git push` through
 * `protect()` is scanned for our tokens before any of it reaches Bitbucket.
 * @example
 * createTokenGate({ pushProtection: { revoke: false } }); // refuse such pushes, keep the token
 */
export interface PushProtectionOptions {
  /**
   * Revoke a live token found in a push. It sits in a local commit that may be pushed elsewhere,
   * so the default is `true`; `false` only refuses the push.
   */
  revoke?: boolean;
  /**
   * Directory where a push waits (on disk, never in memory) while it is scanned; it needs room
   * for the largest pushes in flight. Default: the system's temporary directory.
   */
  tempDir?: string;
}

export const PUSH_PROTECTION_OPTIONS: Shape<PushProtectionOptions> = {
  revoke: boolean,
  tempDir: string({ minLength: 1 }),
};

/**
 * The last segment of a path as a servlet container maps it: `;parameters` dropped from each
 * segment, empty and `.` segments skipped, `..` going up (Tomcat serves
 * `git-receive-pack;x` and `git-receive-pack/.` as `git-receive-pack`).
 */
function mappedLastSegment(path: string): string | undefined {
  const segments: string[] = [];
  for (const raw of path.split('/')) {
    const segment = raw.replace(/;.*$/s, '');
    if (segment === '..') segments.pop();
    else if (segment !== '' && segment !== '.') segments.push(segment);
  }
  return segments.at(-1)?.toLowerCase();
}
const RECEIVE_PACK_TYPE = 'application/x-git-receive-pack-request';

/**
 * True for a git push, however its path is spelled: the path (percent-decoded, any case) ends
 * in `git-receive-pack`, or the body is declared as one. Broader than `gitPrefixes` on purpose.
 */
export function isPush(req: Request): boolean {
  if (req.method !== 'POST') return false;
  const type = req.headers['content-type'];
  if (typeof type === 'string' && type.split(';')[0]!.trim().toLowerCase() === RECEIVE_PACK_TYPE) return true;
  const path = requestPath(req);
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // Undecodable: judged as written.
  }
  return mappedLastSegment(path) === 'git-receive-pack' || mappedLastSegment(decoded) === 'git-receive-pack';
}

/** `protect()`'s last step: holds a push until it is scanned, and refuses it on a live token. */
export function pushProtectionStep(
  options: Readonly<PushProtectionOptions>,
  parts: PushProtectionParts,
): Step {
  const revoke = options.revoke ?? true;
  const tempDir = options.tempDir ?? tmpdir();
  if (!isWritableDirectory(tempDir))
    throw new TypeError(
      `\`pushProtection.tempDir\` must be a writable directory, got ${JSON.stringify(tempDir)}`,
    );
  // Loaded with the package, not at the first push: push protection is on by default, and a
  // scanner imported at the first push made a 50 MB push under load peak 35 MB higher (Node 24).
  const hold = pushHolder({ revoke, tempDir }, parts);

  return function pushProtection(req, res, auth, next) {
    if (!isPush(req)) {
      next();
      return;
    }
    hold(req, res, auth, next);
  };
}

function isWritableDirectory(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
