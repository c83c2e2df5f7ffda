import type { Request, Response } from 'express';
import { TokenGateError } from '../errors.js';
import { authenticateClient } from './client-auth.js';
import { type CodeRecord, type DeviceRecord, digest, type GrantState } from './grant-state.js';
import type { GrantContext, GrantHandler, GrantResult } from './grants.js';
import { type Issued, type OAuthIssuer, oauthError } from './issuer.js';
import type { OAuthConfig } from './options.js';
import { verifierMatches } from './pkce.js';
import { parseScope } from './scope.js';

/** How long a spent code is remembered, so that its replay revokes what it gave. */
const USED_CODE_MS = 600_000;

export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** What the endpoints share. */
export interface EndpointContext {
  config: OAuthConfig;
  state: GrantState;
  issuer: OAuthIssuer;
  /** Grants other parts of the gate add (federation's token exchange), by `grant_type`. */
  extraGrants: ReadonlyMap<string, GrantHandler>;
  clientIp(req: Request): string | null;
  /** Reports a replayed code or refresh token (`auth.denied`, `OAUTH_GRANT_REPLAYED`): a sign of theft. */
  reportReplay(req: Request, user: string | undefined, clientIp: string | null): void;
}

/** The form of a POST, each parameter at most once (RFC 6749 §3.2); null when it is not a form. */
export function readForm(req: Request): URLSearchParams | 'not-form' | 'repeated' {
  if (!req.is('application/x-www-form-urlencoded') || typeof req.body !== 'string') return 'not-form';
  const form = new URLSearchParams(req.body);
  const seen = new Set<string>();
  for (const key of form.keys()) {
    if (seen.has(key) && key !== 'client_id') return 'repeated';
    seen.add(key);
  }
  return form;
}

/** Writes an answer as RFC 6749 says: JSON, never cached; 401s name the Basic scheme. */
export function sendResult(res: Response, result: GrantResult): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
  if (result.status === 401) res.setHeader('WWW-Authenticate', 'Basic realm="oauth"');
  if (result.status === 503) res.setHeader('Retry-After', '5');
  res.status(result.status).json(result.body);
}

/** Our errors as OAuth answers: a store down is 503 `temporarily_unavailable`, a refused token a 400. */
export function resultOfError(err: unknown): GrantResult | undefined {
  if (!(err instanceof TokenGateError)) return undefined;
  if (err.status === 503) return oauthError(503, 'temporarily_unavailable', 'Try again shortly.');
  if (err.status === 400) return oauthError(400, 'invalid_request', err.message);
  if (err.status === 403) return oauthError(400, 'invalid_grant', err.message);
  return undefined;
}

/** POST /token: dispatches on `grant_type`. */
export function tokenEndpoint(context: EndpointContext) {
  const { config, state, issuer, extraGrants } = context;

  async function codeGrant(
    req: Request,
    form: URLSearchParams,
    clientId: string,
    clientIp: string | null,
  ): Promise<GrantResult> {
    const code = form.get('code');
    if (code === null || code === '' || code.length > 200)
      return oauthError(400, 'invalid_request', '`code` is required.');
    // Taken at once: a code works once, whatever happens next (a wrong verifier spends it too).
    const key = digest(code);
    const record = await state.take<CodeRecord>('code', key);
    const invalid = oauthError(400, 'invalid_grant', 'The code is invalid, expired or already used.');
    if (record === null) {
      // A replayed code was intercepted: what it gave is revoked (RFC 6749 §4.1.2).
      const used = await state.take<Issued & { user: string }>('code-used', key);
      if (used !== null) {
        await issuer.revokeIssued(used, clientIp);
        context.reportReplay(req, used.user, clientIp);
      }
      return invalid;
    }
    if (record.client !== clientId) return invalid;
    if (form.get('redirect_uri') !== record.redirectUri)
      return oauthError(400, 'invalid_grant', '`redirect_uri` differs from the authorization request.');
    if (!verifierMatches(form.get('code_verifier'), record.challenge))
      return oauthError(400, 'invalid_grant', 'The PKCE `code_verifier` does not match the code challenge.');
    const issued = await issuer.issue(record, clientIp);
    if (issued.accessTokenId !== undefined && issued.family !== undefined)
      await state.put(
        'code-used',
        key,
        { accessTokenId: issued.accessTokenId, family: issued.family, user: record.user },
        USED_CODE_MS,
      );
    return { status: issued.status, body: issued.body } as GrantResult;
  }

  async function deviceGrant(
    form: URLSearchParams,
    clientId: string,
    clientIp: string | null,
  ): Promise<GrantResult> {
    const deviceCode = form.get('device_code');
    if (deviceCode === null || deviceCode === '' || deviceCode.length > 200)
      return oauthError(400, 'invalid_request', '`device_code` is required.');
    const key = digest(deviceCode);
    const record = await state.get<DeviceRecord>('device', key);
    if (record === null) return oauthError(400, 'expired_token', 'The device code expired. Start again.');
    if (record.client !== clientId)
      return oauthError(400, 'invalid_grant', 'The device code belongs to another client.');
    if (record.status === 'pending') {
      // One poll per interval across the fleet; faster ones are told to slow down (RFC 8628 §3.5).
      const onPace = await state.claim(`poll:${key}`, config.devicePollIntervalS * 1000 - 250);
      return onPace
        ? oauthError(400, 'authorization_pending', 'Waiting for the person to approve the code.')
        : oauthError(400, 'slow_down', `Poll at most every ${config.devicePollIntervalS} s.`);
    }
    const taken = await state.take<DeviceRecord>('device', key);
    if (taken === null) return oauthError(400, 'expired_token', 'The device code was already used.');
    if (taken.status === 'denied' || taken.grant === undefined)
      return oauthError(400, 'access_denied', 'The person denied the request.');
    return issuer.issue(taken.grant, clientIp);
  }

  return async function oauthToken(req: Request, res: Response): Promise<void> {
    const form = readForm(req);
    if (form === 'not-form') {
      sendResult(
        res,
        oauthError(400, 'invalid_request', 'Send the request as application/x-www-form-urlencoded.'),
      );
      return;
    }
    if (form === 'repeated') {
      sendResult(res, oauthError(400, 'invalid_request', 'A parameter is given more than once.'));
      return;
    }
    const clientIp = context.clientIp(req);
    const grantType = form.get('grant_type');
    try {
      const extra = grantType === null ? undefined : extraGrants.get(grantType);
      if (extra !== undefined) {
        const context: GrantContext = { req, clientIp, form };
        sendResult(res, await extra(context));
        return;
      }
      const client = authenticateClient(req, form, config);
      if (!client.ok) {
        sendResult(res, oauthError(client.status, client.error, client.description));
        return;
      }
      let result: GrantResult;
      if (grantType === 'authorization_code') result = await codeGrant(req, form, client.clientId, clientIp);
      else if (grantType === 'refresh_token') {
        const scope = parseScope(form.get('scope'));
        if (scope === undefined) result = oauthError(400, 'invalid_scope', 'Scopes are `read` and `write`.');
        else {
          const refreshed = await issuer.refresh(form.get('refresh_token'), client.clientId, scope, clientIp);
          if (refreshed.replayedBy !== undefined) context.reportReplay(req, refreshed.replayedBy, clientIp);
          result = { status: refreshed.status, body: refreshed.body } as GrantResult;
        }
      } else if (grantType === DEVICE_GRANT) result = await deviceGrant(form, client.clientId, clientIp);
      else if (grantType === null) result = oauthError(400, 'invalid_request', '`grant_type` is required.');
      else
        result = oauthError(
          400,
          'unsupported_grant_type',
          'This server does not issue tokens for that grant type.',
        );
      sendResult(res, result);
    } catch (err) {
      const result = resultOfError(err);
      if (result === undefined) throw err;
      sendResult(res, result);
    }
  };
}
