import { accessSync, constants, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Request, Response } from 'express';
import { ValidationError } from '../errors.js';
import type { EventListener } from '../events.js';
import { requestPath, sendError } from '../http/respond.js';
import { boolean, type Shape, string } from '../internal/options.js';
import type { TokenInfo } from '../model.js';
import type { Step } from '../request/step.js';
import type { TokenService } from '../tokens/service.js';
import type { PackScanner, TokenPlace } from './pack-scanner.js';
import type { RefUpdate } from './push-commands.js';
import { guardPush, type PushVerdict } from './push-guard.js';
import { refusalReport } from './report-status.js';

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

export interface PushProtectionParts {
  tokens: TokenService;
  /** The gate's listener (token.revoked and token.leaked). */
  emit: EventListener;
}

interface LiveFinding {
  info: TokenInfo;
  place: TokenPlace | undefined;
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
  const { tokens, emit } = parts;

  // Apart from `pushProtection` below: its closures would make every request, push or not, allocate their context.
  const holdPush: Step = (req, res, auth, next) => {
    // Each token is looked up once, from the moment it is found while the push streams in.
    const lookups = new Map<string, Promise<TokenInfo | null>>();
    const lookUp = (token: string) => {
      if (!lookups.has(token)) {
        const lookup = tokens.verify(token);
        lookup.catch(() => {});
        lookups.set(token, lookup);
      }
    };
    const judge = async (scanner: PackScanner, error: Error | undefined): Promise<PushVerdict> => {
      if (error !== undefined)
        return refusal(scanner, 'push could not be checked for API tokens', [
          `This push could not be checked for API tokens (${error.message}), so it was not accepted.`,
        ]);
      const live: LiveFinding[] = [];
      try {
        for (const token of scanner.findings.keys()) {
          lookUp(token);
          const info = await lookups.get(token)!;
          if (info !== null) live.push({ info, place: scanner.placeOf(token) });
        }
      } catch {
        return refusal(scanner, 'push could not be checked for API tokens', [
          'The token store is unavailable, so this push could not be checked for API tokens. Try again later.',
        ]);
      }
      if (live.length === 0) return { pass: true };
      const clientIp = auth.clientIp ?? null;
      const refs = scanner.updates.map((u) => u.ref);
      for (const { info, place } of live) {
        let revoked = false;
        if (revoke)
          revoked = await tokens.revoke(info.id, { actor: 'push-protection', clientIp }).catch(() => false);
        emit({
          type: 'token.leaked',
          time: new Date().toISOString(),
          clientIp,
          actor: auth.user ?? 'anonymous',
          user: info.user,
          tokenId: info.id,
          name: info.name,
          source: 'push',
          revoked,
          repository: requestPath(req),
          refs,
          ...(auth.user === undefined ? {} : { pushedBy: auth.user }),
          path: describePlace(place),
        });
      }
      return refusal(scanner, 'push contains a live API token', leakMessages(live, revoke));
    };
    guardPush(req, res, next, { prefix: tokens.tokenPrefix, tempDir, onToken: lookUp, judge });
  };

  return function pushProtection(req, res, auth, next) {
    if (!isPush(req)) {
      next();
      return;
    }
    holdPush(req, res, auth, next);
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

function refusal(scanner: PackScanner, reason: string, messages: string[]): PushVerdict {
  const updates: readonly RefUpdate[] = scanner.updates;
  const capabilities = scanner.commands.capabilities;
  return {
    pass: false,
    answer(res: Response) {
      if (updates.length === 0) {
        // Not even the ref updates could be read: not git's own request, so a plain 400.
        sendError(res.req, res, new ValidationError('body', messages.join('\n')));
        return;
      }
      res.status(200);
      res.setHeader('Content-Type', 'application/x-git-receive-pack-result');
      res.setHeader('Cache-Control', 'no-cache, max-age=0, must-revalidate');
      res.end(refusalReport(updates, capabilities, reason, messages));
    },
  };
}

function describePlace(place: TokenPlace | undefined): string {
  if (place === undefined) return 'unknown';
  if (place.kind === 'blob') return place.path ?? `file ${place.oid}`;
  if (place.kind === 'delta') return 'a changed file';
  return `${place.kind} ${place.oid}`;
}

function where(place: TokenPlace | undefined): string {
  if (place?.kind === 'blob')
    return place.path === undefined ? `in file ${place.oid?.slice(0, 12)}` : `in ${place.path}`;
  if (place?.kind === 'commit') return `in the message of commit ${place.oid?.slice(0, 12)}`;
  if (place?.kind === 'tag') return `in tag ${place.oid?.slice(0, 12)}`;
  return 'in a changed file';
}

/** What git prints as `remote:` lines: which tokens and where, never a secret. */
function leakMessages(live: readonly LiveFinding[], revoked: boolean): string[] {
  const lines = ['', 'PUSH REFUSED: it contains a live API token.', ''];
  for (const { info, place } of live)
    lines.push(`  token "${info.name}" (id ${info.id}, owner ${info.user}) ${where(place)}`);
  lines.push('');
  lines.push(
    revoked
      ? 'The token has been revoked: anyone who copied it can no longer use it. Create a new one.'
      : 'Revoke the token and create a new one: it is in your local commits.',
  );
  lines.push('Remove it from the commits (git commit --amend, or git rebase -i), then push again.', '');
  return lines;
}
