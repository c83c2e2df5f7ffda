import { createHash } from 'node:crypto';
import { isTokenGateError } from '../errors.js';
import type { EventListener } from '../events.js';
import { storeCall } from '../internal/with-timeout.js';
import type { GrantContext, GrantHandler, GrantResult } from '../oauth/grants.js';
import type { TokenStore } from '../stores/token-store.js';
import { createInGroup, type TokenService } from '../tokens/service.js';
import { IssuerKeys, IssuerUnavailableError } from './issuer-keys.js';
import { CLOCK_SKEW_SECONDS, JobTokenRefused, MAX_TOKEN_AGE_SECONDS, verifyJobToken } from './job-token.js';
import { assertFederationPossible, type CompiledRule } from './trust-rules.js';

/** `createdBy` (and the event `actor`) of the tokens the exchange issues. */
export const FEDERATION_ACTOR = 'federation';

/** The `grant_type` of RFC 8693 token exchange. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const SUBJECT_TOKEN_TYPES = new Set([
  'urn:ietf:params:oauth:token-type:jwt',
  'urn:ietf:params:oauth:token-type:id_token',
]);
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export interface TokenExchangeDeps {
  /** Issues the API tokens. */
  tokens: TokenService;
  /** Where each job token's `jti` is claimed, fleet-wide. */
  store: TokenStore;
  /** The compiled `federation` rules, in order. */
  rules: readonly CompiledRule[];
  /** Audit events (`token.exchanged`, `token.exchange-refused`). */
  emit: EventListener;
  /** Deadline of each store call. Default 2,000 ms. */
  storeTimeoutMs?: number;
  /** Deadline of each request to an issuer. Default 5,000 ms. */
  issuerTimeoutMs?: number;
  /** How long an issuer's keys are used before they are fetched again. Default 3,600,000 ms. */
  keysMaxAgeMs?: number;
  /** Least time between fetches caused by an unknown `kid`. Default 60,000 ms. */
  keysRefetchIntervalMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

const error = (status: 400 | 503, code: string, description: string): GrantResult => ({
  status,
  body: { error: code, error_description: description },
});

// One answer for every failed check: which one failed is for the audit log, not for the caller.
// RFC 8693 §2.2.2: an invalid or unacceptable subject token is `invalid_request`.
const REFUSED = error(400, 'invalid_request', 'The subject token is not accepted.');
const UNAVAILABLE = error(
  503,
  'temporarily_unavailable',
  'Tokens cannot be issued right now. Try again shortly.',
);

/** The text of a token name: no control or formatting characters, at most 100 characters. */
function tokenName(issuer: string, subject: string): string {
  const text = `${new URL(issuer).host} ${subject}`.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '?');
  return [...text].slice(0, 100).join('').trim();
}

/** The claim key of a job token: its issuer and `jti`, or its signed part when it has no `jti`. */
function replayKey(issuer: string, jti: string | undefined, signedPart: string): string {
  const hash = createHash('sha256')
    .update(jti === undefined ? `sig\n${signedPart}` : `jti\n${issuer}\n${jti}`)
    .digest('base64url');
  return `federation:jti:${hash}`;
}

/** Reads one parameter: absent is undefined; given twice is an error (RFC 6749 §3.2). */
function single(form: URLSearchParams, name: string): string | undefined | null {
  const values = form.getAll(name);
  return values.length === 0 ? undefined : values.length === 1 ? values[0]! : null;
}

/**
 * The RFC 8693 token exchange as a grant of the OAuth token endpoint: a CI job posts its
 * identity token (`subject_token`, a JWT) and receives a short-lived API token limited to what
 * the first matching `federation` rule allows. Every refusal of the job token is the same
 * `invalid_request` (RFC 8693 §2.2.2); the reason goes to the audit log (`token.exchange-refused`). An issuer or
 * store that cannot be reached is a 503 and never a token.
 * @example
 * const grant = createTokenExchangeGrant({ tokens: gate.tokens, store, rules, emit: console.log });
 * const result = await grant({ req, clientIp, form }); // { status: 200, body: { access_token, … } }
 */
export function createTokenExchangeGrant(deps: TokenExchangeDeps): GrantHandler {
  const now = deps.now ?? Date.now;
  const storeTimeoutMs = deps.storeTimeoutMs ?? 2_000;
  assertFederationPossible(deps.store, deps.tokens.upstreamCredentialsRequired);
  const claim = deps.store.claim.bind(deps.store);
  const rulesByIssuer = new Map<string, CompiledRule[]>();
  for (const rule of deps.rules) {
    const list = rulesByIssuer.get(rule.issuer) ?? [];
    list.push(rule);
    rulesByIssuer.set(rule.issuer, list);
  }
  const keys = new IssuerKeys({
    timeoutMs: deps.issuerTimeoutMs ?? 5_000,
    maxAgeMs: deps.keysMaxAgeMs ?? 3_600_000,
    refetchIntervalMs: deps.keysRefetchIntervalMs ?? 60_000,
    insecureLoopbackIssuers: new Set(deps.rules.filter((r) => r.allowInsecureLoopback).map((r) => r.issuer)),
    now,
  });

  const refuse = (
    context: GrantContext,
    reason: string,
    issuer: string | null,
    rule?: CompiledRule,
  ): GrantResult => {
    deps.emit({
      type: 'token.exchange-refused',
      time: new Date(now()).toISOString(),
      clientIp: context.clientIp,
      reason,
      issuer,
      rule: rule?.name ?? null,
      ...(rule === undefined ? {} : { user: rule.user }),
    });
    return reason === 'scope'
      ? error(400, 'invalid_scope', 'The requested scope is more than this job may have.')
      : REFUSED;
  };

  return async function tokenExchangeGrant(context: GrantContext): Promise<GrantResult> {
    // RFC 6749 §3.2: no parameter twice; an empty one counts as absent; unknown ones are ignored.
    const form = new URLSearchParams();
    for (const name of new Set(context.form.keys())) {
      const value = single(context.form, name);
      if (value === null) return error(400, 'invalid_request', `\`${name}\` is given more than once.`);
      if (value !== '') form.set(name, value!);
    }
    if (form.has('resource') || form.has('audience'))
      return error(
        400,
        'invalid_target',
        'Tokens are issued for this server only: leave out `resource` and `audience`.',
      );
    if (form.has('actor_token') || form.has('actor_token_type'))
      return error(400, 'invalid_request', 'Delegation (`actor_token`) is not supported.');
    const subjectToken = form.get('subject_token');
    const subjectTokenType = form.get('subject_token_type');
    if (subjectToken === null)
      return error(400, 'invalid_request', "`subject_token` (the CI job's identity token) is required.");
    if (subjectTokenType === null || !SUBJECT_TOKEN_TYPES.has(subjectTokenType))
      return error(
        400,
        'invalid_request',
        '`subject_token_type` must be urn:ietf:params:oauth:token-type:jwt (or …:id_token).',
      );
    const requested = form.get('requested_token_type');
    if (requested !== null && requested !== ACCESS_TOKEN_TYPE)
      return error(400, 'invalid_request', `\`requested_token_type\` can only be ${ACCESS_TOKEN_TYPE}.`);
    const scope = form.get('scope');
    if (scope !== null && scope !== 'read' && scope !== 'write')
      return error(400, 'invalid_scope', '`scope` must be read or write.');

    const started = now();
    let verified: Awaited<ReturnType<typeof verifyJobToken>>;
    try {
      verified = await verifyJobToken(subjectToken, rulesByIssuer, keys, started);
    } catch (err) {
      if (err instanceof JobTokenRefused) return refuse(context, err.reason, err.issuer);
      if (err instanceof IssuerUnavailableError) return UNAVAILABLE;
      throw err;
    }
    const { rule, claims, signedPart } = verified;
    if (scope === 'write' && rule.scope === 'read') return refuse(context, 'scope', claims.iss, rule);

    try {
      // Once per job token across the fleet, for as long as any instance would accept it.
      const acceptedUntil = Math.min(claims.exp, claims.iat + MAX_TOKEN_AGE_SECONDS) + CLOCK_SKEW_SECONDS;
      const ttlMs = Math.max(1_000, Math.ceil(acceptedUntil * 1000 - started));
      const first = await storeCall(
        () => claim(replayKey(claims.iss, claims.jti, signedPart), ttlMs),
        storeTimeoutMs,
      );
      if (!first) return refuse(context, 'replayed', claims.iss, rule);
      const issued = now();
      const { token, info } = await createInGroup(
        deps.tokens,
        {
          user: rule.user,
          name: tokenName(claims.iss, claims.sub),
          scope: scope === 'read' ? 'read' : rule.scope,
          expiresAt: new Date(issued + rule.ttlSeconds * 1000),
          createdBy: FEDERATION_ACTOR,
          origin: { via: 'federation', client: rule.name, ip: context.clientIp },
          ...(rule.resources === null ? {} : { resources: rule.resources }),
          ...(rule.allowedIps === null ? {} : { allowedIps: rule.allowedIps }),
        },
        // Bounded per rule, atomically in the store; not counted against the user's cap.
        { group: `federation:${rule.name}`, max: rule.maxLiveTokens },
        { actor: FEDERATION_ACTOR, clientIp: context.clientIp },
      );
      deps.emit({
        type: 'token.exchanged',
        time: new Date(issued).toISOString(),
        clientIp: context.clientIp,
        issuer: claims.iss,
        subject: claims.sub,
        jti: claims.jti ?? null,
        rule: rule.name,
        user: info.user,
        tokenId: info.id,
        scope: info.scope,
        expiresAt: info.expiresAt!,
      });
      return {
        status: 200,
        body: {
          access_token: token,
          issued_token_type: ACCESS_TOKEN_TYPE,
          token_type: 'Bearer',
          expires_in: rule.ttlSeconds,
          scope: info.scope,
        },
      };
    } catch (err) {
      if (isTokenGateError(err) && err.status === 503) return UNAVAILABLE;
      if (isTokenGateError(err) && err.code === 'TOKEN_LIMIT_REACHED') {
        refuse(context, 'rule_limit', claims.iss, rule);
        return {
          status: 429,
          body: {
            error: 'temporarily_unavailable',
            error_description:
              'Too many tokens issued to jobs like this one are live. Try again when one expires.',
          },
        };
      }
      throw err;
    }
  };
}
