import type { Router } from 'express';
import { AuthenticationError, ForbiddenError, NotFoundError, TokenGateError } from '../errors.js';
import { validateUser } from '../validate.js';
import { formFields } from './form-input.js';
import type { OidcLogin } from './logins/oidc-login.js';
import type { PasswordLogin } from './logins/password-login.js';
import { type PageKit, type PageRequest, pageRoute } from './page-kit.js';
import { randomId } from './session.js';
import { continuePage, loginPage } from './views/login-page.js';

/** Login and logout: the password form, the single sign-on redirect and callback. */
export function loginRoutes(router: Router, kit: PageKit): void {
  const { login } = kit;
  const throttle = kit.context.loginThrottle;

  /** A fresh login form (with its own CSRF token bound to a short-lived login cookie). */
  async function showLogin(
    page: PageRequest,
    status: number,
    error?: string,
    username?: string,
  ): Promise<void> {
    if (login === undefined) throw new NotFoundError('No such page.', 'NOT_FOUND');
    const id = randomId();
    if (login.kind === 'password') await kit.writePending(page.req, page.res, { id });
    kit.html(
      page,
      status,
      loginPage({
        frame: page.frame,
        login,
        formToken: kit.codec.csrfToken(`login:${id}`),
        ...(username === undefined ? {} : { username }),
        ...(error === undefined ? {} : { error }),
        ...(kit.hasReturnTo(page.req) ? { signIn: true } : {}),
        ...(error === undefined && page.req.query['done'] === 'logged-out'
          ? { info: 'You are logged out.' }
          : {}),
      }),
    );
  }

  /** A refused login: reported, shown on the login page with its status (and Retry-After). */
  async function refuseLogin(page: PageRequest, error: TokenGateError, user?: string, username?: string) {
    kit.report(page, error, user);
    if (error.retryAfter !== undefined) page.res.setHeader('Retry-After', String(error.retryAfter));
    await showLogin(page, error.status, error.message, username);
  }

  router.get(
    '/login',
    pageRoute(kit, async (page) => {
      if (page.caller !== null) kit.redirect(page, '');
      else await showLogin(page, 200);
    }),
  );

  router.post(
    '/login',
    pageRoute(kit, async (page) => {
      if (login?.kind !== 'password') throw new NotFoundError('No such page.', 'NOT_FOUND');
      const fields = formFields(page.req, ['_csrf', 'username', 'password']);
      const pending = await kit.readPending(page.req);
      kit.clearPending(page.req, page.res);
      if (
        !kit.sameOrigin(page.req) ||
        pending === null ||
        !kit.codec.csrfMatches(`login:${pending.id}`, fields['_csrf'])
      ) {
        const expired = new ForbiddenError(
          'CSRF_REJECTED',
          'The login form expired or did not come from this site. Log in again.',
        );
        await refuseLogin(page, expired);
        return;
      }
      await passwordAttempt(page, login, fields['username'] ?? '', fields['password'] ?? '');
    }),
  );

  async function passwordAttempt(
    page: PageRequest,
    provider: PasswordLogin,
    username: string,
    password: string,
  ) {
    const wrong = new AuthenticationError('PASSWORD_INVALID', 'Wrong user name or password.');
    let user: string;
    try {
      user = validateUser(username.trim(), 'username');
    } catch {
      await refuseLogin(page, wrong);
      return;
    }
    try {
      throttle.assertAllowed(page.clientIp, user);
    } catch (err) {
      if (err instanceof TokenGateError) await refuseLogin(page, err, user, user);
      else throw err;
      return;
    }
    let account: { name: string } | null;
    try {
      account = password === '' ? null : await provider.verify(user, password);
    } catch (err) {
      if (!(err instanceof TokenGateError)) throw err;
      await refuseLogin(page, err, user, user);
      return;
    }
    if (account === null || typeof account.name !== 'string') {
      await throttle.recordFailure(page.clientIp, user);
      await refuseLogin(page, wrong, user, user);
      return;
    }
    await startSession(page, validateUser(account.name), 'password', []);
  }

  async function startSession(
    page: PageRequest,
    user: string,
    via: 'password' | 'oidc',
    groups: readonly string[],
  ) {
    // A new session id at every login: nothing from before the login carries over.
    const session = kit.codec.start(user, via, kit.relevantGroups(groups));
    await kit.writeSession(page.req, page.res, session);
    if (via === 'oidc' && kit.strict) {
      // The browser came back from the provider cross-site: a Strict cookie is sent only from the next, same-site step.
      kit.html(page, 200, continuePage({ ...page.frame, user }));
      return;
    }
    // Back to the page that sent the browser to log in (an OAuth consent), else to My tokens.
    kit.redirect(page, kit.takeReturnTo(page.req, page.res) ?? '');
  }

  router.get(
    '/login/sso',
    pageRoute(kit, async (page) => {
      if (login?.kind !== 'oidc') throw new NotFoundError('No such page.', 'NOT_FOUND');
      throttle.assertAllowed(page.clientIp);
      const { url, pending } = await login.begin();
      await kit.writePending(page.req, page.res, { id: randomId(), ...pending });
      page.res.redirect(303, url.href);
    }),
  );

  router.get(
    '/login/callback',
    pageRoute(kit, async (page) => {
      if (login?.kind !== 'oidc') throw new NotFoundError('No such page.', 'NOT_FOUND');
      await ssoCallback(page, login);
    }),
  );

  /**
   * Single sign-on failures name no user, so they count against the client address alone, and
   * only when the callback carries this browser's login cookie: a cookie-less callback (an
   * `<img>` on another site) proves nothing and must not lock anyone out.
   */
  async function ssoCallback(page: PageRequest, provider: OidcLogin) {
    const pending = await kit.readPending(page.req);
    kit.clearPending(page.req, page.res);
    if (pending === null) {
      const stale = new AuthenticationError(
        'LOGIN_FAILED',
        'The login took too long or was started in another browser. Log in again.',
      );
      await refuseLogin(page, stale);
      return;
    }
    try {
      throttle.assertAllowed(page.clientIp);
      const query = page.req.originalUrl.includes('?')
        ? page.req.originalUrl.slice(page.req.originalUrl.indexOf('?') + 1)
        : '';
      const { user, groups } = await provider.finish(query, pending);
      await startSession(page, user, 'oidc', groups);
    } catch (err) {
      if (!(err instanceof TokenGateError)) throw err;
      if (err.code === 'LOGIN_FAILED') await throttle.recordFailure(page.clientIp);
      await refuseLogin(page, err);
    }
  }

  router.post(
    '/logout',
    pageRoute(kit, async (page) => {
      if (login === undefined) throw new NotFoundError('No such page.', 'NOT_FOUND');
      const fields = formFields(page.req, ['_csrf']);
      if (!kit.checkForm(page, fields['_csrf'])) return;
      if (page.session !== null) kit.codec.end(page.session);
      kit.clearSession(page.req, page.res);
      kit.redirect(page, 'login?done=logged-out');
    }),
  );
}
