import type { Request, Router } from 'express';
import { ForbiddenError, ValidationError } from '../errors.js';
import { tokenQueryOf } from '../http/request-input.js';
import type { TokenInfo } from '../model.js';
import type { TokenQuery } from '../stores/token-store.js';
import { parseToken } from '../tokens/format.js';
import { validateUser } from '../validate.js';
import { formFields } from './form-input.js';
import { type PageKit, pageRoute, type UserRequest } from './page-kit.js';
import { createFormProps, noticeOf, requireUser } from './token-routes.js';
import { identifyPage } from './views/identify-page.js';
import { managerPage } from './views/manager-page.js';
import type { TokenFormState } from './views/token-form.js';
import { confirmPage } from './views/token-pages.js';

const FILTERS = [
  'user',
  'name',
  'scope',
  'restricted',
  'createdAfter',
  'expiresBefore',
  'lastUsedBefore',
  'start',
  'limit',
];

/** Only `manageOthers` may: everyone else gets a 403 (and never sees a link here). */
function assertManager(page: UserRequest): void {
  if (!page.caller.manager)
    throw new ForbiddenError('PERMISSION_DENIED', 'The token manager is for administrators.');
}

/** The token manager's page: everyone's tokens with the management API's filters, paged. */
export function managerRoutes(router: Router, kit: PageKit) {
  const { tokens } = kit.context;

  async function render(
    page: UserRequest,
    state: TokenFormState = { values: {} },
    status = 200,
  ): Promise<void> {
    assertManager(page);
    const filters: Record<string, string> = {};
    let error: string | undefined;
    let query: TokenQuery | undefined;
    try {
      for (const name of FILTERS) {
        const value = page.req.query[name];
        if (value === undefined) continue;
        if (typeof value !== 'string') throw new ValidationError(name, `\`${name}\` must be given once.`);
        filters[name] = value.slice(0, 300);
      }
      // The same reading as the management API's `GET /?all=true&…`.
      query = tokenQueryOf({ query: { ...filters, all: 'true' } } as unknown as Request, page.caller);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      error = err.message;
    }
    let values: TokenInfo[] = [];
    let nextStart: number | undefined;
    if (query !== undefined) {
      const result = await tokens.search(query);
      values = result.values;
      nextStart = result.isLastPage ? undefined : result.nextStart;
    }
    const notice = noticeOf(page);
    kit.html(
      page,
      error === undefined ? status : 400,
      managerPage({
        frame: { ...page.frame, current: 'manage' },
        filters,
        tokens: values,
        start: query?.start ?? 0,
        limit: query?.limit ?? 25,
        nextStart,
        now: page.now,
        ...(notice === undefined ? {} : { notice }),
        ...(error === undefined ? {} : { error }),
        create: createFormProps(kit, page.caller, page.now, state),
      }),
    );
  }

  router.get(
    '/manage',
    pageRoute(kit, async (page) => {
      if (requireUser(kit, page)) await render(page);
    }),
  );

  router.post(
    '/manage/revoke-all',
    pageRoute(kit, async (page) => {
      if (!requireUser(kit, page)) return;
      const fields = formFields(page.req, ['_csrf', 'user', 'confirm']);
      if (!kit.checkForm(page, fields['_csrf'])) return;
      assertManager(page);
      const user = validateUser(fields['user']);
      if (fields['confirm'] !== 'yes') {
        kit.html(
          page,
          200,
          confirmPage({
            frame: page.frame,
            title: 'Revoke all tokens',
            question: `Revoke every token of ${user}?`,
            detail: 'Everything using them stops working at once, on every instance. This cannot be undone.',
            action: `${page.frame.root}manage/revoke-all`,
            fields: { user },
            button: `Revoke all tokens of ${user}`,
            cancel: `${page.frame.root}manage?user=${encodeURIComponent(user)}`,
          }),
        );
        return;
      }
      await tokens.revokeAll({ user }, page.change);
      kit.redirect(page, `manage?user=${encodeURIComponent(user)}&done=revoked-all`);
    }),
  );

  // Identify a pasted token: posted (never in a URL), CSRF-checked, administrators only.
  router.post(
    '/manage/identify',
    pageRoute(kit, async (page) => {
      if (!requireUser(kit, page)) return;
      const fields = formFields(page.req, ['_csrf', 'token']);
      if (!kit.checkForm(page, fields['_csrf'])) return;
      assertManager(page);
      const frame = { ...page.frame, current: 'manage' as const };
      const token = (fields['token'] ?? '').trim();
      if (parseToken(token, tokens.tokenPrefix) === null) {
        const message = `That is not a ${tokens.tokenPrefix}_ token (its length, characters or checksum are wrong).`;
        kit.html(page, 400, identifyPage(frame, undefined, page.now, message));
        return;
      }
      kit.html(page, 200, identifyPage(frame, await tokens.identify(token), page.now));
    }),
  );

  return render;
}
