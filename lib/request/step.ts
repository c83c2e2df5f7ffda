import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { type AuthContext, authOf, newAuth } from './auth-context.js';

/**
 * One step of the request path: a middleware handed the request's `req.auth` instead of reading
 * it. `req` is a different object shape for every request (Express sets its prototype per
 * request), so each `req.auth` read is a full property lookup in V8; `protect()` reads none.
 */
export type Step = (req: Request, res: Response, auth: AuthContext, next: NextFunction) => void;

/** A step as a public middleware of its own: it finds (or creates) `req.auth` itself. */
export function middlewareOf(step: Step): RequestHandler {
  return (req, res, next) => step(req, res, authOf(req), next);
}

/**
 * Runs steps in order as one middleware, on a new `req.auth` (reading an absent property of
 * `req` walks its whole prototype chain); stops at the first step that answers or fails.
 */
export function composeSteps(steps: readonly Step[]): RequestHandler {
  return function protectMiddleware(req, res, next) {
    const auth = newAuth(req);
    let index = 0;
    const run = (err?: unknown): void => {
      if (err !== undefined && err !== null) {
        next(err);
        return;
      }
      const step = steps[index++];
      if (step === undefined) next();
      else step(req, res, auth, run);
    };
    run();
  };
}
