import type { RequestHandler } from 'express';
import type { EventListener } from '../events.js';
import type { GroupResolver } from '../groups/group-resolver.js';
import { requestPath } from '../http/respond.js';
import { rateLimitStep } from '../limits/rate-limit-step.js';
import { authenticateTokenStep } from '../middleware/authenticate-token.js';
import { blockPasswordAuthStep } from '../middleware/block-password-auth.js';
import { type ClientIpOptions, clientIpStep } from '../middleware/client-ip.js';
import { credentialEndpointsStep } from '../middleware/credential-endpoints.js';
import { extractCredentialsStep } from '../middleware/extract-credentials.js';
import { ipAllowlistStep } from '../middleware/ip-allowlist.js';
import { requireGroupsStep } from '../middleware/require-groups.js';
import { requireScopeStep } from '../middleware/require-scope.js';
import { tokenRestrictionsStep } from '../middleware/token-restrictions.js';
import type { Tallies } from '../ops/tallies.js';
import { verifiedRecord } from '../request/credential-slot.js';
import { composeSteps, type Step } from '../request/step.js';
import { setTokenExpiration } from '../request/token-expiration.js';
import type { TokenStore } from '../stores/token-store.js';
import type { TokenService } from '../tokens/service.js';
import type { TokenVerifier } from '../tokens/verifier.js';
import { forwardIdentityStep } from '../upstream/forward-identity.js';
import type { TokenGateOptions } from './options.js';

/** What the request path is built from, besides the options. */
export interface RequestPathParts {
  /** The store (instrumented when metrics are on): rate limits count through it. */
  store: TokenStore;
  /** Deadline of store calls. */
  storeTimeoutMs: number;
  tokens: TokenService;
  verifier: TokenVerifier;
  groups: GroupResolver;
  ipOptions: ClientIpOptions;
  /** The user's listener, wrapped; undefined when there is none (steps then skip building events). */
  onEvent: EventListener | undefined;
  /** With metrics: counts refusals (through the steps' listener) and passes (one last step). */
  tallies?: Tallies | undefined;
  /** Access-token mode: the step that puts the Bitbucket token in place of the identity header. */
  upstreamStep?: Step;
  /** Push protection: holds each git push until it is scanned (last, once the request passed). */
  pushProtection?: Step | undefined;
}

/**
 * `gate.protect()`: the steps of the request path (the public middlewares' own) composed from
 * the gate's options into one middleware, in the order of the design — the address is judged
 * before the token, and a use is recorded only for a request every step let through.
 */
export function buildRequestPath(
  options: Readonly<TokenGateOptions>,
  parts: RequestPathParts,
): RequestHandler {
  const { tokens, verifier, onEvent, tallies } = parts;
  const listener = tallies === undefined ? onEvent : tallies.requestPathListener(onEvent);
  const withEvents = listener === undefined ? {} : { onEvent: listener };
  const tokenPrefix = tokens.tokenPrefix;
  const steps: Step[] = [
    clientIpStep(parts.ipOptions),
    extractCredentialsStep({ tokenPrefix, anonymous: options.anonymous ?? 'pass', ...withEvents }),
  ];
  if (options.blockPasswordAuth) {
    const message = options.passwordMessage === undefined ? {} : { message: options.passwordMessage };
    steps.push(blockPasswordAuthStep({ ...message, ...withEvents }));
  }
  if (options.ipAllowlist !== undefined) {
    steps.push(
      ipAllowlistStep({
        allow: options.ipAllowlist,
        forPasswords: options.ipAllowlistForPasswords ?? false,
        ...parts.ipOptions,
        ...withEvents,
      }),
    );
  }
  steps.push(
    authenticateTokenStep({
      tokens,
      ...(options.throttle === undefined ? {} : { throttle: options.throttle }),
      recordUse: false,
      ...withEvents,
    }),
    tokenRestrictionsStep({
      ...(options.gitPrefixes === undefined ? {} : { gitPrefixes: options.gitPrefixes }),
      ...(options.restPrefixes === undefined ? {} : { restPrefixes: options.restPrefixes }),
      ...(options.unrestrictedPaths === undefined ? {} : { unrestrictedPaths: options.unrestrictedPaths }),
      ...withEvents,
    }),
    // Always there: a token may carry a rate limit of its own without the gate setting any.
    rateLimitStep({
      ...options.rateLimit,
      store: parts.store,
      storeTimeoutMs: parts.storeTimeoutMs,
      onEvent: listener ?? (() => {}),
      ...(tallies === undefined ? {} : { observer: tallies.rateLimitObserver }),
    }),
  );
  if (options.allowCredentialEndpoints !== true) steps.push(credentialEndpointsStep(withEvents));
  const useTokens = options.permissions?.useTokens;
  if (useTokens !== undefined)
    steps.push(requireGroupsStep({ groups: useTokens, resolver: parts.groups, ...withEvents }));
  steps.push(
    requireScopeStep({
      ...(options.extraMethods === undefined ? {} : { extraMethods: options.extraMethods }),
      ...(options.gitPrefixes === undefined ? {} : { gitPrefixes: options.gitPrefixes }),
      ...withEvents,
    }),
    parts.upstreamStep ?? forwardIdentityStep(options.identity ?? {}),
  );
  const audit = options.auditSuccess === true ? onEvent : undefined;
  steps.push(function recordUse(req, res, auth, next) {
    const record = verifiedRecord(auth);
    if (record !== undefined) {
      setTokenExpiration(res, record);
      const ip = auth.clientIp ?? null;
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
  if (parts.pushProtection !== undefined) steps.push(parts.pushProtection);
  return composeSteps(steps);
}
