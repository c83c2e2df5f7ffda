import type { RequestHandler } from 'express';
import type { EventListener } from '../events.js';
import type { GroupResolver } from '../groups/group-resolver.js';
import { requestPath } from '../http/respond.js';
import { compose } from '../internal/compose.js';
import { authenticateToken } from '../middleware/authenticate-token.js';
import { blockPasswordAuth } from '../middleware/block-password-auth.js';
import { type ClientIpOptions, clientIp } from '../middleware/client-ip.js';
import { extractCredentials } from '../middleware/extract-credentials.js';
import { ipAllowlist } from '../middleware/ip-allowlist.js';
import { requireGroups } from '../middleware/require-groups.js';
import { requireScope } from '../middleware/require-scope.js';
import { tokenRestrictions } from '../middleware/token-restrictions.js';
import type { Tallies } from '../ops/tallies.js';
import { verifiedRecord } from '../request/credential-slot.js';
import type { TokenService } from '../tokens/service.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { forwardIdentity } from '../upstream/forward-identity.js';
import type { TokenGateOptions } from './options.js';

/** What the request path is built from, besides the options. */
export interface RequestPathParts {
  tokens: TokenService;
  verifier: TokenVerifier;
  groups: GroupResolver;
  ipOptions: ClientIpOptions;
  /** The user's listener, wrapped; undefined when there is none (steps then skip building events). */
  onEvent: EventListener | undefined;
  /** With metrics: counts refusals (through the steps' listener) and passes (one last step). */
  tallies?: Tallies | undefined;
  /** Access-token mode: the step that puts the Bitbucket token in place of the identity header. */
  upstreamStep?: RequestHandler;
}

/**
 * `gate.protect()`: the middlewares of the request path composed from the gate's options, in
 * the order of the design — the address is judged before the token, and a use is recorded only
 * for a request every step let through.
 */
export function buildRequestPath(
  options: Readonly<TokenGateOptions>,
  parts: RequestPathParts,
): RequestHandler {
  const { tokens, verifier, onEvent, tallies } = parts;
  const listener = tallies === undefined ? onEvent : tallies.requestPathListener(onEvent);
  const withEvents = listener === undefined ? {} : { onEvent: listener };
  const tokenPrefix = tokens.tokenPrefix;
  const steps: RequestHandler[] = [
    clientIp(parts.ipOptions),
    extractCredentials({ tokenPrefix, anonymous: options.anonymous ?? 'pass', ...withEvents }),
  ];
  if (options.blockPasswordAuth) {
    const message = options.passwordMessage === undefined ? {} : { message: options.passwordMessage };
    steps.push(blockPasswordAuth({ ...message, ...withEvents }));
  }
  if (options.ipAllowlist !== undefined) {
    steps.push(
      ipAllowlist({
        allow: options.ipAllowlist,
        forPasswords: options.ipAllowlistForPasswords ?? false,
        ...parts.ipOptions,
        ...withEvents,
      }),
    );
  }
  steps.push(
    authenticateToken({
      tokens,
      ...(options.throttle === undefined ? {} : { throttle: options.throttle }),
      recordUse: false,
      ...withEvents,
    }),
    tokenRestrictions({
      ...(options.gitPrefixes === undefined ? {} : { gitPrefixes: options.gitPrefixes }),
      ...(options.restPrefixes === undefined ? {} : { restPrefixes: options.restPrefixes }),
      ...(options.unrestrictedPaths === undefined ? {} : { unrestrictedPaths: options.unrestrictedPaths }),
      ...withEvents,
    }),
  );
  const useTokens = options.permissions?.useTokens;
  if (useTokens !== undefined)
    steps.push(requireGroups({ groups: useTokens, resolver: parts.groups, ...withEvents }));
  steps.push(
    requireScope({
      ...(options.extraMethods === undefined ? {} : { extraMethods: options.extraMethods }),
      ...(options.gitPrefixes === undefined ? {} : { gitPrefixes: options.gitPrefixes }),
      ...withEvents,
    }),
    parts.upstreamStep ?? forwardIdentity(options.identity ?? {}),
  );
  const audit = options.auditSuccess === true ? onEvent : undefined;
  steps.push(function recordUse(req, _res, next) {
    const record = verifiedRecord(req);
    if (record !== undefined) {
      const ip = req.auth?.clientIp ?? null;
      verifier.noteUse(record, ip);
      audit?.({
        type: 'auth.succeeded',
        time: new Date().toISOString(),
        clientIp: ip,
        method: req.method,
        path: requestPath(req),
        tokenId: record.id,
        user: record.user,
        scope: record.scope,
      });
    }
    next();
  });
  if (tallies !== undefined) steps.push(tallies.countPassed);
  return compose(steps);
}
