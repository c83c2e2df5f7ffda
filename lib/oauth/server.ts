import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import type { ClientIpResolver } from '../client-address/resolver.js';
import type { EventListener } from '../events.js';
import { requestPath } from '../http/respond.js';
import type { TokenService } from '../tokens/service.js';
import { deviceEndpoint } from './device-endpoint.js';
import { GrantState, type GrantStore } from './grant-state.js';
import type { GrantHandler } from './grants.js';
import { type MayIssue, OAuthIssuer, oauthError } from './issuer.js';
import { metadataDocument, urlsFor } from './metadata.js';
import type { OAuthConfig } from './options.js';
import { revocationEndpoint } from './revocation-endpoint.js';
import { type EndpointContext, sendResult, tokenEndpoint } from './token-endpoint.js';

/** What the gate hands the OAuth server. */
export interface OAuthDeps {
  tokens: TokenService;
  store: GrantStore;
  resolveClientIp: ClientIpResolver;
  /** Extra `grant_type`s of the token endpoint (federation's token exchange); empty by default. */
  extraGrants: ReadonlyMap<string, GrantHandler>;
  /** The gate's audit events. Default: none. */
  emit?: EventListener;
  /** Judges each refresh against the permissions as they are then. Default: not judged. */
  mayIssue?: MayIssue;
}

/** Runs an async handler; errors that are not answered go to Express. */
const handled =
  (handler: (req: Request, res: Response) => Promise<void>): RequestHandler =>
  (req, res, next) => {
    handler(req, res).catch(next);
  };

/**
 * The OAuth 2.0 authorization server of `gate.oauth()`: its plain-HTTP endpoints (token,
 * device authorization, revocation, metadata) and, for the token pages, what the browser steps
 * (consent, device code entry) need.
 */
export class OAuthServer {
  readonly config: OAuthConfig;
  readonly state: GrantState;
  readonly issuer: OAuthIssuer;
  readonly context: EndpointContext;
  readonly #deps: OAuthDeps;

  /** `config` comes checked from `oauthConfigOf` (options.ts). */
  constructor(config: OAuthConfig, deps: OAuthDeps) {
    this.config = config;
    this.state = new GrantState(deps.store);
    this.issuer = new OAuthIssuer(deps.tokens, this.state, this.config, Date.now, deps.mayIssue);
    this.#deps = deps;
    this.context = {
      config: this.config,
      state: this.state,
      issuer: this.issuer,
      extraGrants: deps.extraGrants,
      clientIp: (req) => deps.resolveClientIp(req)?.text ?? null,
      reportReplay: (req, user, clientIp) =>
        deps.emit?.({
          type: 'auth.denied',
          time: new Date().toISOString(),
          code: 'OAUTH_GRANT_REPLAYED',
          clientIp,
          method: req.method,
          path: requestPath(req),
          ...(user === undefined ? {} : { user }),
        }),
    };
  }

  /** The endpoints: `POST token`, `POST device_authorization`, `POST revoke`, and the metadata. */
  router(): Router {
    const router = express.Router();
    const form = express.text({ type: 'application/x-www-form-urlencoded', limit: '16kb' });
    const urls = (req: Request) => urlsFor(this.config, req);
    router.use((_req, res, next) => {
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Referrer-Policy', 'no-referrer');
      next();
    });
    router.post('/token', form, handled(tokenEndpoint(this.context)));
    router.post('/device_authorization', form, handled(deviceEndpoint(this.context, urls)));
    router.post('/revoke', form, handled(revocationEndpoint(this.context, this.#deps.tokens)));
    router.get('/.well-known/oauth-authorization-server', this.metadataHandler());
    for (const path of ['/token', '/device_authorization', '/revoke'])
      router.all(path, (_req, res) => {
        res.setHeader('Allow', 'POST');
        sendResult(res, oauthError(400, 'invalid_request', 'Use POST.'));
      });
    router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
      const status = (err as { status?: unknown })?.status;
      if (res.headersSent || typeof status !== 'number' || status < 400 || status >= 500) {
        next(err);
        return;
      }
      // Bodies that cannot be read: too large, wrong charset.
      sendResult(res, oauthError(400, 'invalid_request', 'The request body could not be read.'));
    });
    return router;
  }

  /** GET handler of the RFC 8414 document; mount it at `/.well-known/oauth-authorization-server`. */
  metadataHandler(): RequestHandler {
    return (req, res) => {
      res.setHeader('Cache-Control', 'public, max-age=3600');
      res.json(metadataDocument(this.config, urlsFor(this.config, req), this.#deps.extraGrants.keys()));
    };
  }
}
