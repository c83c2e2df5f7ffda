import express, { type RequestHandler, type Router } from 'express';
import { lazy, whenLoaded } from './lazy.js';

/**
 * A router whose routes are imported when it is made, not when the package is: the token
 * pages (Preact views) and the OAuth pages cost nothing to an app that never mounts them.
 * Loading starts at once, so the first request rarely waits; one that does, waits for it, and
 * a failed load reaches Express's error handling (and is tried again on the next request).
 */
export function lazyRouter(load: () => Promise<RequestHandler>): Router {
  const routes = lazy(load);
  routes.get().catch(() => {}); // reported to the first request that needs it
  const router = express.Router();
  router.use(function lazyRoutes(req, res, next) {
    whenLoaded(routes, next, (handler) => handler(req, res, next));
  });
  return router;
}
