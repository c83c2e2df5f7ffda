import type { Router } from 'express';
import {
  AuthenticationError,
  BadRequestError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  TokenGateError,
  ValidationError,
} from '../errors.js';
import { assertMayCreate, type Caller, mayManage } from '../http/management-context.js';
import type { TokenInfo } from '../model.js';
import type { TokenUpdate } from '../tokens/service.js';
import type { UpstreamCredentials } from '../tokens/upstream-hook.js';
import { sameUser, validateName, validateScope, validateUser } from '../validate.js';
import { expiryChoices, requestedFormExpiry } from './expiry-choices.js';
import { formFields, restrictionsOf } from './form-input.js';
import { type PageKit, type PageRequest, pageRoute, type UserRequest } from './page-kit.js';
import { type LoginMethod, randomId } from './session.js';
import { formatTime } from './views/parts.js';
import type { TokenFormState } from './views/token-form.js';
import { confirmPage, createdPage, myTokensPage, type Notice, tokenPage } from './views/token-pages.js';

const TOKEN_ID = /^[0-9A-Za-z]{11}$/;
// Access-token mode's `bitbucketPassword` and `bitbucketToken` (CreateForm's `upstream` fields).
const CREATE_FIELDS = [
  'bitbucketPassword',
  'bitbucketToken',
  '_csrf',
  'formId',
  'back',
  'user',
  'name',
  'scope',
  'expiry',
  'expiryDate',
  'allowedIps',
  'requiredHeaders',
  'resources',
  'rateLimit',
];
const UPDATE_FIELDS = ['_csrf', 'name', 'allowedIps', 'requiredHeaders', 'resources', 'rateLimit'];
const GRACE_CHOICES = new Set(['0', '3600000', '86400000', '604800000']);

const NOTICES: Record<string, Notice> = {
  revoked: { tone: 'success', text: 'The token was revoked.' },
  saved: { tone: 'success', text: 'Your changes were saved.' },
  'revoked-all': { tone: 'success', text: 'Every token of the user was revoked.' },
  'logged-out': { tone: 'success', text: 'You are logged out.' },
};

/** A fixed notice named by `?done=` (never text taken from the URL). */
export function noticeOf(page: PageRequest): Notice | undefined {
  const done = page.req.query['done'];
  return typeof done === 'string' && Object.hasOwn(NOTICES, done) ? NOTICES[done] : undefined;
}

/** Someone logged in; otherwise the login page (GET) or a 401 (a form sent after the session ended). */
export function requireUser(kit: PageKit, page: PageRequest): page is UserRequest {
  if (page.caller !== null && page.session !== null) return true;
  if (page.req.method === 'GET' && kit.login !== undefined) {
    kit.redirect(page, 'login');
    return false;
  }
  kit.fail(
    page,
    new AuthenticationError(
      'NOT_AUTHENTICATED',
      kit.login === undefined ? 'Log in to manage API tokens.' : 'Your session has ended. Log in again.',
    ),
  );
  return false;
}

/** A token the caller may see; someone else's is "not found", exactly like an unknown id. */
async function visibleToken(kit: PageKit, page: UserRequest): Promise<TokenInfo> {
  const id = String(page.req.params['id']);
  const info = TOKEN_ID.test(id) ? await kit.context.tokens.get(id) : null;
  if (info === null || !mayManage(page.caller, info.user)) throw new NotFoundError();
  return info;
}

export function createFormProps(
  kit: PageKit,
  caller: Caller,
  now: number,
  state: TokenFormState = { values: {} },
  via?: LoginMethod,
) {
  return caller.mayCreate
    ? {
        state,
        expiry: expiryChoices(kit.context.expiry, now),
        mayWrite: caller.mayCreateWrite,
        formId: randomId(),
        ...(kit.context.tokens.upstreamCredentialsRequired
          ? { upstream: { password: via === 'password' } }
          : {}),
      }
    : undefined;
}

/**
 * Access-token mode: the Bitbucket credential a create form brings. A password only mints for
 * the one who logged in with it; it lives for this request and goes nowhere else.
 */
function upstreamOf(
  kit: PageKit,
  page: UserRequest,
  fields: Record<string, string>,
  owner: string,
): { upstream?: UpstreamCredentials } {
  const password = fields['bitbucketPassword'] ?? '';
  const bitbucketToken = (fields['bitbucketToken'] ?? '').trim();
  if (!kit.context.tokens.upstreamCredentialsRequired) {
    if (password !== '' || bitbucketToken !== '')
      throw new ValidationError(
        'bitbucketToken',
        'This proxy forwards the identity: no Bitbucket credential is used.',
      );
    return {};
  }
  if (bitbucketToken !== '') return { upstream: { bitbucketToken } };
  if (password === '') return {};
  if (page.session.via !== 'password' || !sameUser(owner, page.caller.name))
    throw new ValidationError(
      'bitbucketPassword',
      'A password makes tokens of the one who logged in with it only: give a Bitbucket access token of the user instead.',
    );
  kit.context.loginThrottle.assertAllowed(page.clientIp, page.caller.name);
  return { upstream: { password } };
}

/**
 * Failures a create form shows next to its fields: input errors, and a missing or refused
 * Bitbucket credential (next to the password field where the form has one). A missing one is
 * said in the form's words, not the management API's field names.
 */
function createFormError(
  err: unknown,
  passwordField: boolean,
  credentialGiven: boolean,
): { field: string; message: string; status: number } | undefined {
  if (isInputError(err)) return { field: fieldOf(err), message: err.message, status: 400 };
  const credential = passwordField ? 'bitbucketPassword' : 'bitbucketToken';
  if (err instanceof ConflictError && !credentialGiven)
    return {
      field: credential,
      message: passwordField
        ? 'Type your Bitbucket password here again, or give a Bitbucket HTTP access token: Bitbucket makes the access token behind this one with it.'
        : 'Give a Bitbucket HTTP access token of the owner: this proxy backs each API token with one.',
      status: 409,
    };
  if (err instanceof ConflictError) return { field: credential, message: err.message, status: 409 };
  if (err instanceof TokenGateError && (err.code === 'PASSWORD_INVALID' || err.code === 'TOO_MANY_ATTEMPTS'))
    return { field: credential, message: err.message, status: err.status };
  return undefined;
}

/** The restriction fields of a token as the edit form shows them. */
function restrictionValues(info: TokenInfo): Record<string, string> {
  return {
    allowedIps: info.allowedIps?.join('\n') ?? '',
    requiredHeaders: Object.entries(info.requiredHeaders ?? {})
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n'),
    resources: info.resources?.join('\n') ?? '',
    rateLimit: info.rateLimit === null ? '' : `${info.rateLimit.requests}/${info.rateLimit.windowSeconds}`,
  };
}

const isInputError = (err: unknown): err is BadRequestError => err instanceof BadRequestError;
const fieldOf = (err: BadRequestError) => (err instanceof ValidationError ? err.field : 'form');

/** Shows what a form was sent with (never the CSRF token, a password or a Bitbucket token). */
function echo(fields: Record<string, string>): Record<string, string> {
  const { _csrf, formId, bitbucketPassword, bitbucketToken, ...values } = fields;
  return values;
}

/** My tokens, create, a token's page, change, rotate, revoke. */
export function tokenRoutes(
  router: Router,
  kit: PageKit,
  renderManager: (page: UserRequest, state: TokenFormState, status: number) => Promise<void>,
): void {
  const { tokens } = kit.context;

  async function renderMine(page: UserRequest, state?: TokenFormState, status = 200): Promise<void> {
    const list = await tokens.list(page.caller.name);
    kit.html(
      page,
      status,
      myTokensPage({
        frame: { ...page.frame, current: 'mine' },
        tokens: list,
        now: page.now,
        ...(noticeOf(page) === undefined ? {} : { notice: noticeOf(page)! }),
        create: createFormProps(kit, page.caller, page.now, state, page.session.via),
      }),
    );
  }

  function showCreated(
    page: UserRequest,
    created: { token: string; info: TokenInfo },
    back: 'mine' | 'manage',
    rotated?: string,
  ) {
    const base = kit.publicBase(page.req);
    kit.html(
      page,
      201,
      createdPage({
        frame: page.frame,
        token: created.token,
        info: created.info,
        cloneLine: `git -c http.extraHeader="Authorization: Bearer ${created.token}" clone ${base}${kit.cloneExample}`,
        curlLine: `curl -H "Authorization: Bearer ${created.token}" ${base}${kit.curlExample}`,
        back,
        ...(rotated === undefined ? {} : { rotated }),
      }),
    );
  }

  router.get(
    '/',
    pageRoute(kit, async (page) => {
      if (requireUser(kit, page)) await renderMine(page);
    }),
  );

  router.post(
    '/create',
    pageRoute(kit, async (page) => {
      if (!requireUser(kit, page)) return;
      const fields = formFields(page.req, CREATE_FIELDS);
      if (!kit.checkForm(page, fields['_csrf'])) return;
      const back = fields['back'] === 'manage' && page.caller.manager ? 'manage' : 'mine';
      const formId = fields['formId'] ?? '';
      if (formId !== '' && kit.sentForms.has(formId)) {
        throw new BadRequestError(
          'VALIDATION_FAILED',
          'This form was already sent, and its token was shown then: tokens are shown only once. Create another if you need one.',
        );
      }
      try {
        const given = fields['user'] ?? '';
        if (given !== '' && !page.caller.manager && !sameUser(given, page.caller.name))
          throw new ForbiddenError('PERMISSION_DENIED', 'You may not create API tokens for other users.');
        const owner = given === '' ? page.caller.name : validateUser(given);
        const scope = validateScope(fields['scope'] ?? 'read');
        const name = validateName(fields['name'] ?? '');
        assertMayCreate(page.caller, owner, scope);
        const choices = expiryChoices(kit.context.expiry, page.now);
        const expiresAt = requestedFormExpiry(choices, fields['expiry'], fields['expiryDate'], page.now);
        const created = await tokens.create(
          {
            user: owner,
            name,
            scope,
            ...(expiresAt === null ? {} : { expiresAt: new Date(expiresAt) }),
            ...restrictionsOf(fields, 'absent'),
            ...upstreamOf(kit, page, fields, owner),
          },
          page.change,
        );
        if (formId !== '') kit.sentForms.set(formId, true);
        showCreated(page, created, back);
      } catch (err) {
        const failure = createFormError(
          err,
          page.session.via === 'password' && back === 'mine',
          (fields['bitbucketPassword'] ?? '') !== '' || (fields['bitbucketToken'] ?? '').trim() !== '',
        );
        if (failure === undefined) throw err;
        if (err instanceof TokenGateError && err.code === 'PASSWORD_INVALID')
          await kit.context.loginThrottle.recordFailure(page.clientIp, page.caller.name);
        const state = { values: echo(fields), error: { field: failure.field, message: failure.message } };
        if (back === 'manage') await renderManager(page, state, failure.status);
        else await renderMine(page, state, failure.status);
      }
    }),
  );

  router.get(
    '/token/:id',
    pageRoute(kit, async (page) => {
      if (!requireUser(kit, page)) return;
      const info = await visibleToken(kit, page);
      const notice = noticeOf(page);
      kit.html(
        page,
        200,
        tokenPage({
          frame: page.frame,
          info,
          now: page.now,
          state: { values: restrictionValues(info) },
          ...(notice === undefined ? {} : { notice }),
        }),
      );
    }),
  );

  router.post(
    '/token/:id/update',
    pageRoute(kit, async (page) => {
      if (!requireUser(kit, page)) return;
      const fields = formFields(page.req, UPDATE_FIELDS);
      if (!kit.checkForm(page, fields['_csrf'])) return;
      const info = await visibleToken(kit, page);
      try {
        const wanted: TokenUpdate = {
          name: validateName(fields['name'] ?? ''),
          ...restrictionsOf(fields, 'null'),
        };
        // Only what changed, so the `token.updated` event names the real changes.
        const current = restrictionValues(info);
        const changes: Record<string, unknown> = {};
        if (wanted.name !== info.name) changes['name'] = wanted.name;
        for (const field of ['allowedIps', 'requiredHeaders', 'resources', 'rateLimit'] as const)
          if ((fields[field] ?? '').trim() !== current[field]) changes[field] = wanted[field];
        if (Object.keys(changes).length > 0 && (await tokens.update(info.id, changes, page.change)) === null)
          throw new NotFoundError();
        kit.redirect(page, `token/${info.id}?done=saved`);
      } catch (err) {
        if (!isInputError(err)) throw err;
        kit.html(
          page,
          400,
          tokenPage({
            frame: page.frame,
            info,
            now: page.now,
            state: { values: echo(fields), error: { field: fieldOf(err), message: err.message } },
          }),
        );
      }
    }),
  );

  router.post(
    '/token/:id/rotate',
    pageRoute(kit, async (page) => {
      if (!requireUser(kit, page)) return;
      const fields = formFields(page.req, ['_csrf', 'graceMs', 'confirm']);
      if (!kit.checkForm(page, fields['_csrf'])) return;
      const info = await visibleToken(kit, page);
      const grace = fields['graceMs'] ?? '86400000';
      if (!GRACE_CHOICES.has(grace)) throw new ValidationError('graceMs', 'Choose one of the offered times.');
      // A rotation makes a token: the caller must still be allowed to make one like it.
      assertMayCreate(page.caller, info.user, info.scope);
      if (fields['confirm'] !== 'yes') {
        kit.html(
          page,
          200,
          confirmPage({
            frame: page.frame,
            title: 'Rotate token',
            question: `Rotate the token “${info.name}”?`,
            detail:
              grace === '0'
                ? 'A new token replaces it, and the old one stops working at once.'
                : 'A new token replaces it. The old one keeps working for the time you chose.',
            action: `${page.frame.root}token/${info.id}/rotate`,
            fields: { graceMs: grace },
            button: 'Rotate token',
            cancel: `${page.frame.root}token/${info.id}`,
          }),
        );
        return;
      }
      const created = await tokens.rotate(info.id, { graceMs: Number(grace) }, page.change);
      const until =
        grace === '0'
          ? null
          : Math.min(Date.parse(info.expiresAt ?? '9999-12-31T00:00:00Z'), page.now + Number(grace));
      showCreated(
        page,
        created,
        sameUser(info.user, page.caller.name) ? 'mine' : 'manage',
        until === null
          ? 'The old token was revoked.'
          : `The old token keeps working until ${formatTime(new Date(until).toISOString())}.`,
      );
    }),
  );

  router.post(
    '/token/:id/revoke',
    pageRoute(kit, async (page) => {
      if (!requireUser(kit, page)) return;
      const fields = formFields(page.req, ['_csrf', 'confirm', 'back']);
      if (!kit.checkForm(page, fields['_csrf'])) return;
      const info = await visibleToken(kit, page);
      const back = fields['back'] === 'manage' && page.caller.manager ? 'manage' : 'mine';
      if (fields['confirm'] !== 'yes') {
        kit.html(
          page,
          200,
          confirmPage({
            frame: page.frame,
            title: 'Revoke token',
            question: `Revoke the token “${info.name}”?`,
            detail: `Anything using it stops working at once. This cannot be undone.${sameUser(info.user, page.caller.name) ? '' : ` (A token of ${info.user}.)`}`,
            action: `${page.frame.root}token/${info.id}/revoke`,
            fields: { back },
            button: 'Revoke token',
            cancel: back === 'manage' ? `${page.frame.root}manage` : page.frame.root,
          }),
        );
        return;
      }
      await tokens.revoke(info.id, page.change);
      kit.redirect(page, back === 'manage' ? 'manage?done=revoked' : '?done=revoked');
    }),
  );
}
