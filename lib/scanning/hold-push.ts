import type { Response } from 'express';
import { ValidationError } from '../errors.js';
import type { EventListener } from '../events.js';
import { requestPath, sendError } from '../http/respond.js';
import type { TokenInfo } from '../model.js';
import type { Step } from '../request/step.js';
import type { TokenService } from '../tokens/service.js';
import type { PackScanner, TokenPlace } from './pack-scanner.js';
import type { RefUpdate } from './push-commands.js';
import { guardPush, type PushVerdict } from './push-guard.js';
import { refusalReport } from './report-status.js';

export interface PushProtectionParts {
  tokens: TokenService;
  /** The gate's listener (token.revoked and token.leaked). */
  emit: EventListener;
}

interface LiveFinding {
  info: TokenInfo;
  place: TokenPlace | undefined;
}

/**
 * What push protection does with a push (`isPush`): holds it on disk while it is scanned, looks
 * up each token found, and refuses the push through git's own report when one is live (revoking
 * it unless `revoke` is false). Loaded with the first push (see push-protection.ts).
 */
export function pushHolder(options: { revoke: boolean; tempDir: string }, parts: PushProtectionParts): Step {
  const { revoke, tempDir } = options;
  const { tokens, emit } = parts;

  return (req, res, auth, next) => {
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
