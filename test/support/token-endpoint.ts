import express, { type Express } from 'express';
import type { GrantHandler } from '../../lib/oauth/grants.js';

/**
 * The least an OAuth token endpoint does around a grant handler, until the real one (issue 23)
 * serves it: read the form, dispatch on `grant_type`, write the result as JSON with no-store.
 */
export function tokenEndpointApp(grants: Record<string, GrantHandler>): Express {
  const app = express();
  app.post(
    '/oauth/token',
    express.text({ type: 'application/x-www-form-urlencoded', limit: '64kb' }),
    async (req, res, next) => {
      try {
        const form = new URLSearchParams(typeof req.body === 'string' ? req.body : '');
        const grant = grants[form.get('grant_type') ?? ''];
        const result =
          grant === undefined
            ? { status: 400, body: { error: 'unsupported_grant_type' } }
            : await grant({ req, clientIp: req.socket.remoteAddress ?? null, form });
        res.status(result.status).set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' }).json(result.body);
      } catch (err) {
        next(err);
      }
    },
  );
  return app;
}
