import type { Request, Response } from 'express';
import { TokenGateError } from '../errors.js';
import type { EventListener } from '../events.js';

const REALM = 'Bitbucket API';

/** Which authentication schemes a 401 invites: the request path takes both, logins only Basic. */
export type Challenge = 'basic-and-bearer' | 'basic';

/** The request's full path without its query string, as events report it. */
export function requestPath(req: Request): string {
  return (req.originalUrl ?? req.url).split('?')[0] ?? '/';
}

/** True for requests from the git command line, which shows a text/plain body as `remote: …`. */
function fromGit(req: Request): boolean {
  const agent = req.headers['user-agent'];
  return typeof agent === 'string' && agent.startsWith('git/');
}

/** RFC 6750 error attribute of a Bearer challenge. */
function bearerError(error: TokenGateError): string {
  if (error.code === 'TOKEN_INVALID' || error.code === 'TOKEN_USER_MISMATCH')
    return ', error="invalid_token"';
  if (error.code === 'CREDENTIALS_MALFORMED') return ', error="invalid_request"';
  return '';
}

/**
 * Answers an error in Bitbucket's REST error shape (so Bitbucket clients show it), or as plain
 * text for git. 401s (and malformed credentials) carry `WWW-Authenticate` so git and browsers
 * ask for credentials; Bearer is offered only where tokens are accepted.
 * @example
 * app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
 *   if (isTokenGateError(err)) sendError(req, res, err);
 *   else next(err);
 * });
 */
export function sendError(
  req: Request,
  res: Response,
  error: TokenGateError,
  challenge: Challenge = 'basic-and-bearer',
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(error.status);
  res.setHeader('Cache-Control', 'no-store');
  if (error.status === 401 || error.code === 'CREDENTIALS_MALFORMED') {
    const basic = `Basic realm="${REALM}", charset="UTF-8"`;
    res.setHeader(
      'WWW-Authenticate',
      challenge === 'basic' ? basic : [basic, `Bearer realm="${REALM}"${bearerError(error)}`],
    );
  }
  if (error.retryAfter !== undefined) res.setHeader('Retry-After', String(error.retryAfter));
  const need = error.need;
  // What would have been needed, for scripts: a header, and fields beside Bitbucket's own.
  if (need?.scope !== undefined) res.setHeader('API-Token-Required-Scope', need.scope);
  if (need?.restriction !== undefined) res.setHeader('API-Token-Restriction', need.restriction);
  if (fromGit(req)) {
    res.type('text/plain').send(`${error.message}\n`);
    return;
  }
  const item = { context: null, message: error.message, exceptionName: null, code: error.code };
  res.json({
    errors: [
      need === undefined
        ? item
        : {
            ...item,
            ...(need.scope === undefined ? {} : { requiredScope: need.scope }),
            ...(need.restriction === undefined ? {} : { restriction: need.restriction }),
          },
    ],
  });
}

/**
 * Refuses a request: reports `auth.denied` (no secret, only what is known), then answers with
 * the error.
 */
export function refuse(
  req: Request,
  res: Response,
  error: TokenGateError,
  emit: EventListener,
  known: { tokenId?: string; user?: string } = {},
  challenge: Challenge = 'basic-and-bearer',
): void {
  const user = known.user ?? req.auth?.user;
  emit({
    type: 'auth.denied',
    time: new Date().toISOString(),
    code: error.code,
    clientIp: req.auth?.clientIp ?? null,
    method: req.method,
    path: requestPath(req),
    ...(known.tokenId === undefined ? {} : { tokenId: known.tokenId }),
    ...(user === undefined ? {} : { user }),
  });
  sendError(req, res, error, challenge);
}

/** Refuses with our error, or hands anything else (a bug) to Express's error handling. */
export function refuseOrFail(
  req: Request,
  res: Response,
  next: (err?: unknown) => void,
  emit: EventListener,
): (err: unknown) => void {
  return (err) => {
    if (err instanceof TokenGateError) refuse(req, res, err, emit);
    else next(err);
  };
}
