import type { Router } from 'express';
import {
  AuthenticationError,
  BadRequestError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
} from '../errors.js';
import { assertMayCreate } from '../http/management-context.js';
import { formFields, listField } from '../pages/form-input.js';
import { type PageKit, type PageRequest, pageRoute, type UserRequest } from '../pages/page-kit.js';
import { validateRestrictions } from '../tokens/restrictions.js';
import { validateScope } from '../validate.js';
import { type CodeRecord, type DeviceRecord, digest, type Grant, newSecret } from './grant-state.js';
import type { OAuthConfig } from './options.js';
import { CHALLENGE } from './pkce.js';
import { redirectAllowed, redirectWith } from './redirect-uri.js';
import { parseScope } from './scope.js';
import type { OAuthServer } from './server.js';
import { normalizeUserCode } from './user-code.js';
import { consentPage, deviceEntryPage, type LifetimeChoice, outcomePage } from './views.js';

/** Authorization codes live at most this long (the issue's ≤ 60 s). */
const CODE_TTL_MS = 60_000;
/** The login throttle's user key for typed device codes (they name no user). */
const DEVICE_CODE_USER = '(device code)';
const REQUEST_FIELDS = [
  'client_id',
  'redirect_uri',
  'state',
  'code_challenge',
  'code_challenge_method',
  'scope',
];
const CONSENT_FIELDS = ['_csrf', 'decision', 'grantScope', 'lifetime', 'resources'];

/** A checked authorization request. */
interface AuthorizeRequest {
  client: { id: string; name: string };
  redirectUri: string;
  state: string;
  challenge: string;
  requested: 'read' | 'write' | null;
}

type Checked =
  | { ok: true; request: AuthorizeRequest }
  /** Client or redirect URI wrong: told to the person, never redirected (RFC 6749 §4.1.2.1). */
  | { ok: false; page: string }
  | { ok: false; redirect: string };

const one = (params: URLSearchParams, name: string) => {
  const all = params.getAll(name);
  return all.length === 1 ? all[0]! : all.length === 0 ? null : undefined;
};

function checkRequest(config: OAuthConfig, params: URLSearchParams): Checked {
  const clientId = one(params, 'client_id');
  const client = clientId ? config.clients.get(clientId) : undefined;
  if (client === undefined)
    return { ok: false, page: 'The application that sent you here is not registered.' };
  const redirectUri = one(params, 'redirect_uri');
  if (!redirectUri || !redirectAllowed(redirectUri, client.redirectUris))
    return { ok: false, page: 'The application asked to send the answer to an address it may not use.' };
  const state = one(params, 'state');
  const fail = (error: string, description: string) => ({
    ok: false as const,
    redirect: redirectWith(redirectUri, {
      error,
      error_description: description,
      ...(typeof state === 'string' ? { state } : {}),
    }),
  });
  if (one(params, 'response_type') !== 'code')
    return fail('unsupported_response_type', 'Only response_type=code is supported.');
  if (!state || state.length > 500) return fail('invalid_request', '`state` is required.');
  const challenge = one(params, 'code_challenge');
  if (!challenge || !CHALLENGE.test(challenge) || one(params, 'code_challenge_method') !== 'S256')
    return fail('invalid_request', 'PKCE is required: code_challenge with code_challenge_method=S256.');
  const scopeParam = one(params, 'scope');
  const requested = scopeParam === undefined ? undefined : parseScope(scopeParam);
  if (requested === undefined) return fail('invalid_scope', 'Scopes are `read` and `write`.');
  return {
    ok: true,
    request: { client: { id: client.id, name: client.name }, redirectUri, state, challenge, requested },
  };
}

/** Lifetimes a person may pick: an hour, and the configured lifetime (the default). */
function lifetimes(config: OAuthConfig): LifetimeChoice[] {
  const label = (ms: number) =>
    ms % 86_400_000 === 0
      ? `${ms / 86_400_000} day${ms === 86_400_000 ? '' : 's'}`
      : ms % 3_600_000 === 0
        ? `${ms / 3_600_000} hour${ms === 3_600_000 ? '' : 's'}`
        : `${Math.round(ms / 60_000)} minutes`;
  const values = [...new Set([3_600_000, config.accessTokenTtlMs])].filter(
    (ms) => ms <= config.accessTokenTtlMs,
  );
  return values.sort((a, b) => a - b).map((ms) => ({ ms, label: label(ms) }));
}

/** The scope, lifetime and restriction a person chose on a consent form; throws a 400/403 naming the field. */
function chosenGrant(
  page: UserRequest,
  config: OAuthConfig,
  fields: Record<string, string>,
  client: string,
  requested: 'read' | 'write' | null,
): Grant {
  const scope = validateScope(fields['grantScope'] ?? 'read', 'grantScope');
  if (scope === 'write' && requested === 'read')
    throw new ValidationError('grantScope', 'The application asked for read access only.');
  assertMayCreate(page.caller, page.caller.name, scope);
  const lifetimeMs = Number(fields['lifetime']);
  if (!lifetimes(config).some((choice) => choice.ms === lifetimeMs))
    throw new ValidationError('lifetime', 'Choose one of the offered lifetimes.');
  const resources = listField(fields['resources']);
  const checked = resources === undefined ? {} : validateRestrictions({ resources });
  return {
    user: page.caller.name,
    client,
    scope,
    resources: checked.resources === undefined || checked.resources === null ? null : [...checked.resources],
    lifetimeMs,
    ...(page.session.groups.length === 0 ? {} : { claimGroups: [...page.session.groups] }),
  };
}

/** The consent page may post to us and send the browser on to the client's loopback address. */
function allowFormTarget(page: PageRequest, redirectUri: string): void {
  const csp = page.res.getHeader('Content-Security-Policy');
  if (typeof csp === 'string')
    page.res.setHeader(
      'Content-Security-Policy',
      csp.replace("form-action 'self'", `form-action 'self' ${new URL(redirectUri).origin}`),
    );
}

const queryOf = (page: PageRequest) => {
  const url = page.req.originalUrl;
  return url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
};

/**
 * The OAuth server's browser steps, served by the token pages (their login, session, CSRF
 * checks, security headers and look): `GET/POST oauth/authorize` (consent) and `GET/POST
 * device` (device code entry and consent). They answer 404 until `gate.oauth()` is called.
 */
export function oauthPageRoutes(
  router: Router,
  kit: PageKit,
  server: () => Promise<OAuthServer> | undefined,
): void {
  const throttle = kit.context.loginThrottle;

  const serverOf = async (): Promise<OAuthServer> => {
    const found = server();
    if (found === undefined) throw new NotFoundError('No such page.', 'NOT_FOUND');
    return found;
  };

  /** Someone logged in; else the login page, which comes back here afterwards. */
  function loggedIn(page: PageRequest, returnTo: string): page is UserRequest {
    if (page.caller !== null && page.session !== null) return true;
    if (kit.login === undefined) throw new AuthenticationError('NOT_AUTHENTICATED', 'Log in to continue.');
    kit.setReturnTo(page.req, page.res, returnTo);
    kit.redirect(page, 'login');
    return false;
  }

  function renderConsent(
    page: UserRequest,
    oauth: OAuthServer,
    request: AuthorizeRequest,
    status = 200,
    values?: Record<string, string>,
    error?: { field: string; message: string },
  ) {
    allowFormTarget(page, request.redirectUri);
    const hidden: Record<string, string> = {
      client_id: request.client.id,
      redirect_uri: request.redirectUri,
      state: request.state,
      code_challenge: request.challenge,
      code_challenge_method: 'S256',
      scope: request.requested ?? '',
    };
    kit.html(
      page,
      status,
      consentPage({
        frame: page.frame,
        action: `${page.frame.root}oauth/authorize`,
        clientName: request.client.name,
        clientId: request.client.id,
        redirectHost: new URL(request.redirectUri).host,
        user: page.caller.name,
        mayWrite: page.caller.mayCreateWrite,
        requested: request.requested,
        lifetimes: lifetimes(oauth.config),
        hidden,
        ...(values === undefined ? {} : { values }),
        ...(error === undefined ? {} : { error }),
      }),
    );
  }

  router.get(
    '/oauth/authorize',
    pageRoute(kit, async (page) => {
      const oauth = await serverOf();
      const query = queryOf(page);
      const checked = checkRequest(oauth.config, new URLSearchParams(query));
      if (!checked.ok) {
        if ('page' in checked) throw new BadRequestError('VALIDATION_FAILED', checked.page);
        page.res.redirect(303, checked.redirect);
        return;
      }
      if (!loggedIn(page, `oauth/authorize?${query}`)) return;
      if (!page.caller.mayCreate) {
        kit.report(page, new ForbiddenError('PERMISSION_DENIED', 'may not create tokens'), page.caller.name);
        page.res.redirect(
          303,
          redirectWith(checked.request.redirectUri, {
            error: 'access_denied',
            error_description: 'This user may not create API tokens.',
            state: checked.request.state,
          }),
        );
        return;
      }
      renderConsent(page, oauth, checked.request);
    }),
  );

  router.post(
    '/oauth/authorize',
    pageRoute(kit, async (page) => {
      const oauth = await serverOf();
      const fields = formFields(page.req, [...CONSENT_FIELDS, ...REQUEST_FIELDS]);
      if (!kit.checkForm(page, fields['_csrf'])) return;
      const params = new URLSearchParams({ response_type: 'code' });
      for (const name of REQUEST_FIELDS) if (fields[name]) params.set(name, fields[name]);
      const checked = checkRequest(oauth.config, params);
      if (!checked.ok) {
        if ('page' in checked) throw new BadRequestError('VALIDATION_FAILED', checked.page);
        page.res.redirect(303, checked.redirect);
        return;
      }
      const { request } = checked;
      if (page.caller === null || page.session === null)
        throw new AuthenticationError('NOT_AUTHENTICATED', 'Your session has ended. Log in again.');
      const user = page as UserRequest;
      if (fields['decision'] !== 'allow') {
        page.res.redirect(
          303,
          redirectWith(request.redirectUri, {
            error: 'access_denied',
            error_description: 'The user denied the request.',
            state: request.state,
          }),
        );
        return;
      }
      let grant: Grant;
      try {
        grant = chosenGrant(user, oauth.config, fields, request.client.id, request.requested);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        const { _csrf, ...values } = fields;
        renderConsent(user, oauth, request, 400, values, { field: err.field, message: err.message });
        return;
      }
      const code = newSecret();
      const record: CodeRecord = { ...grant, redirectUri: request.redirectUri, challenge: request.challenge };
      await oauth.state.put('code', digest(code), record, CODE_TTL_MS);
      page.res.redirect(303, redirectWith(request.redirectUri, { code, state: request.state }));
    }),
  );

  router.get(
    '/device',
    pageRoute(kit, async (page) => {
      await serverOf();
      const typed = typeof page.req.query['user_code'] === 'string' ? page.req.query['user_code'] : '';
      const code = normalizeUserCode(typed);
      if (!loggedIn(page, code === null ? 'device' : `device?user_code=${code}`)) return;
      kit.html(
        page,
        200,
        deviceEntryPage(page.frame, code === null ? '' : `${code.slice(0, 4)}-${code.slice(4)}`),
      );
    }),
  );

  router.post(
    '/device',
    pageRoute(kit, async (page) => {
      const oauth = await serverOf();
      const fields = formFields(page.req, [
        '_csrf',
        'user_code',
        'decision',
        'grantScope',
        'lifetime',
        'resources',
      ]);
      if (!kit.checkForm(page, fields['_csrf'])) return;
      if (page.caller === null || page.session === null)
        throw new AuthenticationError('NOT_AUTHENTICATED', 'Your session has ended. Log in again.');
      const user = page as UserRequest;
      // Typed codes are guessable in principle: the login throttle counts every miss.
      throttle.assertAllowed(page.clientIp, DEVICE_CODE_USER);
      const code = normalizeUserCode(fields['user_code']);
      const pointer = code === null ? null : await oauth.state.get<{ device: string }>('user-code', code);
      const device = pointer === null ? null : await oauth.state.get<DeviceRecord>('device', pointer.device);
      if (code === null || pointer === null || device === null || device.status !== 'pending') {
        await throttle.recordFailure(page.clientIp, DEVICE_CODE_USER);
        kit.report(page, new BadRequestError('VALIDATION_FAILED', 'unknown device code'), user.caller.name);
        kit.html(
          page,
          400,
          deviceEntryPage(
            page.frame,
            fields['user_code'] ?? '',
            'That code is not valid or has expired. Check it and try again.',
          ),
        );
        return;
      }
      const client = oauth.config.clients.get(device.client);
      const request: AuthorizeRequest = {
        client: { id: device.client, name: client?.name ?? device.client },
        redirectUri: '',
        state: '',
        challenge: '',
        requested: device.requested,
      };
      const render = (
        status: number,
        values?: Record<string, string>,
        error?: { field: string; message: string },
      ) =>
        kit.html(
          page,
          status,
          consentPage({
            frame: page.frame,
            action: `${page.frame.root}device`,
            clientName: request.client.name,
            clientId: request.client.id,
            redirectHost: null,
            user: user.caller.name,
            mayWrite: user.caller.mayCreateWrite,
            requested: device.requested,
            lifetimes: lifetimes(oauth.config),
            hidden: { user_code: code },
            ...(values === undefined ? {} : { values }),
            ...(error === undefined ? {} : { error }),
          }),
        );
      const decision = fields['decision'];
      if (decision === undefined) {
        if (!user.caller.mayCreate)
          throw new ForbiddenError('PERMISSION_DENIED', 'You may not create API tokens.');
        render(200);
        return;
      }
      const remaining = device.expiresAt - Date.now();
      if (decision !== 'allow') {
        await oauth.state.take('user-code', code);
        await oauth.state.put('device', pointer.device, { ...device, status: 'denied' }, remaining);
        kit.html(
          page,
          200,
          outcomePage(page.frame, 'Request denied', 'The device was not signed in.', 'warning'),
        );
        return;
      }
      let grant: Grant;
      try {
        grant = chosenGrant(user, oauth.config, fields, device.client, device.requested);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        const { _csrf, ...values } = fields;
        render(400, values, { field: err.field, message: err.message });
        return;
      }
      // The user code works once: taken before the approval is written.
      if ((await oauth.state.take('user-code', code)) === null) {
        kit.html(page, 400, deviceEntryPage(page.frame, '', 'That code was already used or has expired.'));
        return;
      }
      await oauth.state.put('device', pointer.device, { ...device, status: 'approved', grant }, remaining);
      kit.html(
        page,
        200,
        outcomePage(
          page.frame,
          'Device signed in',
          'You may close this page and return to your device.',
          'success',
        ),
      );
    }),
  );
}
