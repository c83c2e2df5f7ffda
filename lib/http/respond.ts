import type { Request, Response } from 'express';
import { TokenGateError } from '../errors.js';
import type { EventListener } from '../events.js';

const DEFAULT_REALM = 'Bitbucket API';

/** The request's full path without its query string, as events report it. */
export function requestPath(req: Request): string {
  return (req.originalUrl ?? req.url).split('?')[0] ?? '/';
}

/** True for requests from the git command line, which shows a text/plain body as `remote: …`. */
function fromGit(req: Request): boolean {
  const agent = req.headers['user-agent'];
  return typeof agent === 'string' && agent.startsWith('git/');
}

/**
 * Answers an error in Bitbucket's REST error shape (so Bitbucket clients show it), or as plain
 * text for git. 401s carry `WWW-Authenticate` so git and browsers ask for credentials.
 */
export function sendError(req: Request, res: Response, error: TokenGateError, realm = DEFAULT_REALM): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(error.status);
  res.setHeader('Cache-Control', 'no-store');
  if (error.status === 401) {
    res.setHeader('WWW-Authenticate', [`Basic realm="${realm}", charset="UTF-8"`, `Bearer realm="${realm}"`]);
  }
  if (error.retryAfter !== undefined) res.setHeader('Retry-After', String(error.retryAfter));
  if (fromGit(req)) {
    res.type('text/plain').send(`${error.message}\n`);
    return;
  }
  res.json({ errors: [{ context: null, message: error.message, exceptionName: null, code: error.code }] });
}

/**
 * Refuses a request on the request path: reports `auth.denied` (no secret, only what is known),
 * then answers with the error.
 */
export function refuse(
  req: Request,
  res: Response,
  error: TokenGateError,
  emit: EventListener,
  known: { tokenId?: string; user?: string } = {},
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
  sendError(req, res, error);
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
