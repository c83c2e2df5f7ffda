import type { RequestHandler } from 'express';

/** Runs middlewares in order as one; stops at the first that answers or fails. */
export function compose(steps: RequestHandler[]): RequestHandler {
  return function protectMiddleware(req, res, next) {
    let index = 0;
    const run = (err?: unknown): void => {
      if (err !== undefined && err !== null) {
        next(err);
        return;
      }
      const step = steps[index++];
      if (step === undefined) {
        next();
        return;
      }
      step(req, res, run);
    };
    run();
  };
}
