import type { NextFunction, Request, Response } from 'express';
import { ForbiddenError, TokenGateError } from '../errors.js';
import type { GroupResolver } from '../groups/group-resolver.js';
import { type Caller, type ManagementContext, resolveCaller } from '../http/management-context.js';
import { fromOwnPages } from '../http/origin-check.js';
import { requestPath } from '../http/respond.js';
import { BoundedCache } from '../internal/bounded-cache.js';
import type { ChangeContext } from '../tokens/service.js';
import { type CookieSettings, clearCookie, cookiePath, readCookie, setCookie } from './cookies.js';
import type { LoginProvider, PagesOptions } from './options.js';
import { newNonce, setPageHeaders } from './security-headers.js';
import { LOGIN_WINDOW_MS, type PendingLogin, type Session, SessionCodec } from './session.js';
import type { Frame } from './views/layout.js';
import { messagePage } from './views/token-pages.js';

/** Everything one page request knows. */
export interface PageRequest {
  req: Request;
  res: Response;
  frame: Frame;
  session: Session | null;
  /** The logged-in caller with the gate's permissions; null when nobody is logged in. */
  caller: Caller | null;
  clientIp: string | null;
  change: ChangeContext;
  now: number;
}

/** A page request with someone logged in. */
export type UserRequest = PageRequest & { caller: Caller; session: Session };

/** Pages a login may return to: never an absolute URL, only these relative paths (no open redirect). */
const RETURN_PATH = /^(?:oauth\/authorize|device)(?:\?[\x21-\x7e]{0,3000})?$/;
const HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;
/** Most claim groups a session carries (only those the permissions name are kept anyway). */
const MAX_SESSION_GROUPS = 50;

/**
 * What the pages' routes share: the session codec and cookies, frames, the permissions check,
 * refusals (reported as `auth.denied`), and the public URLs.
 */
export class PageKit {
  readonly context: ManagementContext;
  readonly codec: SessionCodec;
  readonly login: LoginProvider | undefined;
  readonly principal: ((req: Request) => string | undefined) | undefined;
  readonly title: string;
  readonly cloneExample: string;
  readonly curlExample: string;
  /** Create forms already sent: a resent form makes no second token. */
  readonly sentForms = new BoundedCache<string, true>(10_000, 3_600_000);
  readonly #cookieName: string;
  readonly #secure: boolean;
  readonly #sameSite: 'Lax' | 'Strict';
  readonly #publicUrl: URL | undefined;

  constructor(context: ManagementContext, options: Readonly<PagesOptions>) {
    this.context = context;
    this.codec = new SessionCodec(options.session);
    this.login = options.login;
    this.principal = options.principal;
    this.title = options.title ?? 'API tokens';
    this.cloneExample = options.cloneExample ?? 'scm/PROJECT/repo.git';
    this.curlExample = options.curlExample ?? 'rest/api/1.0/projects';
    this.#secure = options.session.secure ?? true;
    this.#sameSite = options.session.sameSite === 'strict' ? 'Strict' : 'Lax';
    this.#cookieName = `${this.#secure ? '__Secure-' : ''}${options.session.cookieName ?? 'api_tokens_session'}`;
    this.#publicUrl = options.publicUrl === undefined ? undefined : new URL(options.publicUrl);
  }

  get strict(): boolean {
    return this.#sameSite === 'Strict';
  }

  /** The app's public base URL (ends with `/`): configured, else from the request's `Host`. */
  publicBase(req: Request): string {
    if (this.#publicUrl !== undefined) {
      const href = this.#publicUrl.href;
      return href.endsWith('/') ? href : `${href}/`;
    }
    const host = req.headers.host;
    return `${req.protocol === 'https' ? 'https' : 'http'}://${typeof host === 'string' && HOST.test(host) ? host : 'localhost'}/`;
  }

  #cookieSettings(req: Request, sameSite = this.#sameSite): CookieSettings {
    const prefix = this.#publicUrl === undefined ? '' : this.#publicUrl.pathname.replace(/\/+$/, '');
    return { path: cookiePath(`${prefix}${req.baseUrl}`), secure: this.#secure, sameSite };
  }

  async readSession(req: Request): Promise<Session | null> {
    return this.codec.open(readCookie(req, this.#cookieName));
  }

  async writeSession(req: Request, res: Response, session: Session): Promise<void> {
    const value = await this.codec.seal(session);
    setCookie(res, this.#cookieName, value, this.#cookieSettings(req), session.expiresAt - this.codec.now());
  }

  clearSession(req: Request, res: Response): void {
    clearCookie(res, this.#cookieName, this.#cookieSettings(req));
  }

  /** The login in progress. Its cookie is always `SameSite=Lax`: the identity provider sends the browser back cross-site. */
  async readPending(req: Request): Promise<PendingLogin | null> {
    return this.codec.openLogin(readCookie(req, `${this.#cookieName}_login`));
  }

  async writePending(req: Request, res: Response, pending: PendingLogin): Promise<void> {
    const value = await this.codec.sealLogin(pending);
    setCookie(res, `${this.#cookieName}_login`, value, this.#cookieSettings(req, 'Lax'), LOGIN_WINDOW_MS);
  }

  clearPending(req: Request, res: Response): void {
    clearCookie(res, `${this.#cookieName}_login`, this.#cookieSettings(req, 'Lax'));
  }

  /**
   * Where the login sends the browser back to (the OAuth consent or device page that asked
   * for it): a path relative to the pages' root, one of `RETURN_PATH`'s, for the login's duration.
   */
  setReturnTo(req: Request, res: Response, path: string): void {
    if (!RETURN_PATH.test(path)) return;
    const value = Buffer.from(path).toString('base64url');
    setCookie(res, `${this.#cookieName}_return`, value, this.#cookieSettings(req, 'Lax'), LOGIN_WINDOW_MS);
  }

  /** True while a login will return to an OAuth page (the login page then says why it is asked). */
  hasReturnTo(req: Request): boolean {
    return readCookie(req, `${this.#cookieName}_return`) !== undefined;
  }

  /** The path a login returns to (and forgets it), or undefined. */
  takeReturnTo(req: Request, res: Response): string | undefined {
    const value = readCookie(req, `${this.#cookieName}_return`);
    if (value === undefined) return undefined;
    clearCookie(res, `${this.#cookieName}_return`, this.#cookieSettings(req, 'Lax'));
    const path = Buffer.from(value, 'base64url').toString('utf8');
    return RETURN_PATH.test(path) ? path : undefined;
  }

  /** True when a state-changing request comes from our own pages (see `fromOwnPages`). */
  sameOrigin(req: Request): boolean {
    return fromOwnPages(req, this.#publicUrl?.origin);
  }

  /** Of the groups a provider's claim lists, those the gate's permissions name (the rest change nothing). */
  relevantGroups(groups: readonly string[]): string[] {
    const { createTokens, createWriteTokens, manageOthers } = this.context.permissions;
    const named = [createTokens, createWriteTokens, manageOthers].filter((p) => !p.everyone);
    return [...new Set(groups)].filter((g) => named.some((p) => p.allows([g]))).slice(0, MAX_SESSION_GROUPS);
  }

  /**
   * The caller with the gate's permissions. Groups from the provider's claim (kept in the
   * session) count together with the gate's `groups` resolver.
   */
  async caller(user: string, claimGroups: readonly string[]): Promise<Caller> {
    if (claimGroups.length === 0) return resolveCaller(this.context, user);
    const base = this.context.groups;
    const groups: GroupResolver = async (name) => [...(await base(name)), ...claimGroups];
    return resolveCaller({ ...this.context, groups }, user);
  }

  /** A frame for a page at `req.path`: links are relative to it, so any mount path works. */
  frame(req: Request, nonce: string, user: string | null, manager: boolean, csrf: string): Frame {
    const depth = (req.path.match(/\//g)?.length ?? 1) - 1;
    return {
      appTitle: this.title,
      nonce,
      root: depth <= 0 ? './' : '../'.repeat(depth),
      user,
      manager,
      csrf,
      canLogOut: this.login !== undefined,
    };
  }

  /**
   * Loads the session (refreshing its idle timer), the caller and the frame. With `principal`,
   * the app tells the user and the session only binds the CSRF token to this browser.
   */
  async prepare(req: Request, res: Response): Promise<PageRequest> {
    const nonce = newNonce();
    setPageHeaders(res, nonce);
    const now = this.codec.now();
    let session = await this.readSession(req);
    let user: string | null;
    if (this.principal !== undefined) {
      let named: string | undefined;
      try {
        named = this.principal(req);
      } catch {
        named = undefined;
      }
      user = typeof named === 'string' && named !== '' ? named : null;
      if (session === null) {
        session = this.codec.start(null, 'principal');
        await this.writeSession(req, res, session);
      }
    } else {
      user = session?.user ?? null;
    }
    if (session !== null && this.codec.due(session)) {
      session = this.codec.touch(session);
      await this.writeSession(req, res, session);
    }
    const caller = user === null ? null : await this.caller(user, session?.groups ?? []);
    const csrf = session === null ? '' : this.codec.csrfToken(session.sid);
    const clientIp = this.context.resolveClientIp(req)?.text ?? null;
    return {
      req,
      res,
      frame: this.frame(req, nonce, caller?.name ?? null, caller?.manager ?? false, csrf),
      session,
      caller,
      clientIp,
      change: { ...(caller === null ? {} : { actor: caller.name }), clientIp },
      now,
    };
  }

  /** Reports a refusal as `auth.denied` (never with a secret). */
  report(page: Pick<PageRequest, 'req' | 'clientIp'>, error: TokenGateError, user?: string): void {
    const { req } = page;
    this.context.emit({
      type: 'auth.denied',
      time: new Date().toISOString(),
      code: error.code,
      clientIp: page.clientIp,
      method: req.method,
      path: requestPath(req),
      ...(user === undefined ? {} : { user }),
    });
  }

  /** Answers an error as a page with its status; 401s, 403s and 429s are reported as `auth.denied`. */
  fail(page: PageRequest, error: TokenGateError, user?: string): void {
    if (error.status === 401 || error.status === 403 || error.status === 429)
      this.report(page, error, user ?? page.caller?.name);
    if (error.retryAfter !== undefined) page.res.setHeader('Retry-After', String(error.retryAfter));
    const titles: Record<number, string> = {
      400: 'Not accepted',
      401: 'Log in',
      403: 'Not allowed',
      404: 'Not found',
      413: 'Too large',
      429: 'Too many attempts',
      503: 'Unavailable',
    };
    this.html(page, error.status, messagePage(page.frame, titles[error.status] ?? 'Error', error.message));
  }

  html(page: Pick<PageRequest, 'res'>, status: number, body: string): void {
    page.res.status(status).type('html').send(body);
  }

  /** A 303 to a path relative to the pages' root (never an absolute URL: no open redirect). */
  redirect(page: PageRequest, path: string): void {
    page.res.redirect(303, `${page.frame.root}${path}`);
  }

  /**
   * Checks a state-changing request: from our own pages (origin), with the session's CSRF
   * token. A refusal is a 403 `CSRF_REJECTED`, reported.
   */
  checkForm(page: PageRequest, token: unknown): boolean {
    const ok =
      this.sameOrigin(page.req) && page.session !== null && this.codec.csrfMatches(page.session.sid, token);
    if (!ok)
      this.fail(
        page,
        new ForbiddenError(
          'CSRF_REJECTED',
          'This form has expired or did not come from this site. Reload the page and try again.',
        ),
      );
    return ok;
  }
}

type Handler = (page: PageRequest) => Promise<void>;

/** Runs a page handler: prepares the request, answers our errors as pages, hands bugs on. */
export function pageRoute(kit: PageKit, handler: Handler) {
  return (req: Request, res: Response, next: NextFunction): void => {
    let page: PageRequest | undefined;
    kit
      .prepare(req, res)
      .then((prepared) => {
        page = prepared;
        return handler(prepared);
      })
      .catch((err: unknown) => {
        if (err instanceof TokenGateError && !res.headersSent) {
          if (page !== undefined) kit.fail(page, err);
          else {
            const nonce = newNonce();
            setPageHeaders(res, nonce);
            kit.fail(fallbackPage(kit, req, res, nonce), err);
          }
        } else next(err);
      });
  };
}

/** A page request for errors that struck before the request was prepared (a group lookup failing). */
export function fallbackPage(kit: PageKit, req: Request, res: Response, nonce: string): PageRequest {
  const clientIp = kit.context.resolveClientIp(req)?.text ?? null;
  return {
    req,
    res,
    frame: kit.frame(req, nonce, null, false, ''),
    session: null,
    caller: null,
    clientIp,
    change: { clientIp },
    now: Date.now(),
  };
}
