import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { NotFoundError, PayloadTooLargeError, TokenGateError, ValidationError } from '../errors.js';
import type { ManagementContext } from '../http/management-context.js';
import { validateOptions } from '../internal/options.js';
import { serveAsset } from './assets/assets.js';
import { loginRoutes } from './login-routes.js';
import { managerRoutes } from './manager-routes.js';
import { PAGES_OPTIONS, type PagesOptions } from './options.js';
import { fallbackPage, PageKit } from './page-kit.js';
import { newNonce, setPageHeaders } from './security-headers.js';
import { tokenRoutes } from './token-routes.js';

/**
 * The token pages (`gate.pages()`): server-rendered HTML for people to log in, create, copy
 * once, rotate and revoke their tokens, and a token manager for `manageOthers`. They act only
 * through the management context (the token service and the gate's permissions).
 */
export function createPagesRouter(
  context: ManagementContext,
  options: Readonly<PagesOptions>,
  /** More pages from other parts of the gate (the OAuth consent and device pages), sharing the kit. */
  extend?: (router: Router, kit: PageKit) => void,
): Router {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('gate.pages() takes an options object: { login | principal, session: { secret } }');
  validateOptions<PagesOptions>(options, PAGES_OPTIONS);
  if ((options.login === undefined) === (options.principal === undefined))
    throw new TypeError(
      'gate.pages() needs exactly one of `login` (passwordLogin or oidcLogin) and `principal`',
    );
  if (options.session?.secret === undefined)
    throw new TypeError('`session.secret` is required: at least 32 random bytes, the same on every instance');

  const kit = new PageKit(context, options);
  const router = express.Router();

  router.use(function trailingSlash(req: Request, res: Response, next: NextFunction) {
    // `/tokens` → `/tokens/`, so that the pages' relative links resolve under any mount path.
    const path = (req.originalUrl.split('?')[0] ?? '').split('#')[0] ?? '';
    if (req.path === '/' && !path.endsWith('/') && (req.method === 'GET' || req.method === 'HEAD')) {
      const last = path.slice(path.lastIndexOf('/') + 1);
      const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : '';
      res.redirect(301, `${last}/${query}`);
      return;
    }
    next();
  });

  router.get('/assets/:file', (req, res, next) => {
    if (!serveAsset(req, res, String(req.params['file']))) next();
  });

  router.use(express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 64 }));

  const renderManager = managerRoutes(router, kit);
  tokenRoutes(router, kit, renderManager);
  loginRoutes(router, kit);
  extend?.(router, kit);

  router.use((req: Request, res: Response) => {
    const nonce = newNonce();
    setPageHeaders(res, nonce);
    kit.fail(fallbackPage(kit, req, res, nonce), new NotFoundError('There is no such page.', 'NOT_FOUND'));
  });

  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    // Form bodies that cannot be read: too large (413), malformed (400).
    const status = (err as { status?: unknown })?.status;
    let error: TokenGateError | undefined;
    if (err instanceof TokenGateError) error = err;
    else if (status === 413) error = new PayloadTooLargeError('The form is too large.');
    else if (typeof status === 'number' && status >= 400 && status < 500)
      error = new ValidationError('body', 'The form could not be read.');
    if (error === undefined) {
      next(err);
      return;
    }
    const nonce = newNonce();
    setPageHeaders(res, nonce);
    kit.fail(fallbackPage(kit, req, res, nonce), error);
  });

  return router;
}
