import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import {
  AuthenticationError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  TokenGateError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../errors.js';
import type { TokenInfo } from '../model.js';
import { parseAuthorization } from '../request/authorization-header.js';
import { verifiedRecord } from '../request/credential-slot.js';
import { passwordLoginOf } from '../request/login-password.js';
import type { ChangeContext, CreateTokenInput } from '../tokens/service.js';
import { toTokenInfo } from '../tokens/token-info.js';
import type { UpstreamCredentials } from '../tokens/upstream-hook.js';
import { sameUser, validateName, validateScope, validateUser } from '../validate.js';
import {
  assertMayCreate,
  type Caller,
  type ManagementContext,
  mayManage,
  resolveCaller,
} from './management-context.js';
import { managementApiDocument } from './openapi.js';
import { fromOwnPages } from './origin-check.js';
import { jsonBody, refuseUnknownFields, requestedExpiry, tokenQueryOf } from './request-input.js';
import { refuse } from './respond.js';

/**
 * Options of `gate.router()`.
 * @example
 * // Behind your own login (passport, an SSO proxy) instead of bitbucketLogin:
 * const options: RouterOptions = { principal: (req) => req.header('x-authenticated-user') };
 * app.use('/tokens/api', gate.router(options));
 */
export interface RouterOptions {
  /**
   * Who is calling: a user name, or undefined when nobody is logged in (401). Default: reads
   * `req.user` as a string or its `name`, `username` or `slug` (what `bitbucketLogin` sets).
   */
  principal?: (req: Request) => string | undefined;
  /**
   * The API's public URL (e.g. `https://git.example.com/tokens/api`) when a proxy in front
   * changes the `Host` header: a browser's `Origin` must name it. Default: the request's `Host`.
   */
  publicUrl?: string;
}

const CREATE_FIELDS = new Set([
  'name',
  'scope',
  'expiresInDays',
  'expiresAt',
  'user',
  'allowedIps',
  'requiredHeaders',
  'resources',
  'rateLimit',
  'bitbucketToken',
]);
const UPDATE_FIELDS = new Set(['name', 'allowedIps', 'requiredHeaders', 'resources', 'rateLimit']);

export function defaultPrincipal(req: Request): string | undefined {
  const user = (req as { user?: unknown }).user;
  if (typeof user === 'string') return user;
  if (typeof user !== 'object' || user === null) return undefined;
  for (const key of ['name', 'username', 'slug'] as const) {
    const value = (user as Record<string, unknown>)[key];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

type Handler = (req: Request, res: Response, caller: Caller, change: ChangeContext) => Promise<void>;

/**
 * The management API: create, list, read, change, rotate, copy and revoke tokens, with the
 * gate's group permissions. Mount it behind your own login (or `bitbucketLogin`). A request
 * authenticated by a token may only revoke that very token (a kill switch for a leaked token).
 */
export function createRouter(context: ManagementContext, options: Readonly<RouterOptions> = {}): Router {
  const principalOf = options.principal ?? defaultPrincipal;
  if (typeof principalOf !== 'function') throw new TypeError('`principal` must be a function of the request');
  const expectedOrigin = publicOrigin(options.publicUrl);
  const { tokens } = context;
  const router = express.Router();
  router.use(sameSiteChangesOnly(context, expectedOrigin));
  router.use(express.json({ limit: '16kb', strict: true }));
  router.use(tokensMayOnlyRevokeThemselves(context));

  // The contract of this API (OpenAPI 3.1), public like the API's shape: no login needed.
  let openApi: string | undefined;
  router.get('/openapi.json', (_req, res) => {
    openApi ??= JSON.stringify(managementApiDocument(), null, 2);
    res.setHeader('Cache-Control', 'no-cache');
    res.type('application/json').send(openApi);
  });

  /** Routes for logged-in callers: resolves the caller and answers `no-store`. */
  const route =
    (work: Handler) =>
    (req: Request, res: Response, next: NextFunction): void => {
      res.setHeader('Cache-Control', 'no-store');
      resolveCaller(context, safePrincipal(principalOf, req))
        .then((caller) =>
          work(req, res, caller, {
            actor: caller.name,
            clientIp: context.resolveClientIp(req)?.text ?? null,
          }),
        )
        .catch(next);
    };

  /**
   * Access-token mode: the Bitbucket credentials this request brings for a token of `owner` —
   * a `bitbucketToken` in the body, else the owner's own password login. Undefined otherwise:
   * creating then answers 409, rotating and copying share the original's Bitbucket token.
   */
  function upstreamFor(req: Request, body: Record<string, unknown>, owner: string) {
    const given = body['bitbucketToken'];
    const login = passwordLoginOf(req);
    const slug = login !== undefined && sameUser(login.user, owner) ? { slug: login.slug } : {};
    if (given !== undefined) {
      if (!tokens.upstreamCredentialsRequired)
        throw new ValidationError(
          'bitbucketToken',
          'This proxy forwards the identity: `bitbucketToken` is not used.',
        );
      if (typeof given !== 'string')
        throw new ValidationError(
          'bitbucketToken',
          '`bitbucketToken` must be a Bitbucket HTTP access token.',
        );
      return { upstream: { bitbucketToken: given, ...slug } satisfies UpstreamCredentials };
    }
    if (!tokens.upstreamCredentialsRequired || login === undefined || !sameUser(login.user, owner)) return {};
    return { upstream: { password: login.password, slug: login.slug } satisfies UpstreamCredentials };
  }

  /** Someone else's token is "not found" to a caller who may not manage others. */
  async function visibleToken(caller: Caller, id: string): Promise<TokenInfo> {
    const info = await tokens.get(id);
    if (info === null || !mayManage(caller, info.user)) throw new NotFoundError();
    return info;
  }

  router.post(
    '/',
    route(async (req, res, caller, change) => {
      const body = jsonBody(req);
      refuseUnknownFields(body, CREATE_FIELDS);
      const owner = body['user'] === undefined ? caller.name : validateUser(body['user']);
      const scope = validateScope(body['scope']);
      const name = validateName(body['name']);
      assertMayCreate(caller, owner, scope);
      const expiresAt = requestedExpiry(body['expiresInDays'], body['expiresAt'], context.expiry.maxDays);
      const { token, info } = await tokens.create(
        {
          user: owner,
          name,
          scope,
          ...(expiresAt === null ? {} : { expiresAt: new Date(expiresAt) }),
          ...restrictionFields(body),
          ...upstreamFor(req, body, owner),
        },
        change,
      );
      res.status(201).json({ token, ...info });
    }),
  );

  router.post(
    '/revoke-all',
    route(async (req, res, caller, change) => {
      const body = jsonBody(req);
      refuseUnknownFields(body, new Set(['user']));
      const user = validateUser(body['user']);
      if (!mayManage(caller, user))
        throw new ForbiddenError('PERMISSION_DENIED', 'You may not revoke other users’ API tokens.');
      res.json({ user, revoked: await tokens.revokeAll({ user }, change) });
    }),
  );

  router.get(
    '/',
    route(async (req, res, caller) => {
      const query = tokenQueryOf(req, caller);
      const page = await tokens.search(query);
      res.json({
        values: page.values,
        size: page.values.length,
        limit: query.limit,
        start: query.start,
        isLastPage: page.isLastPage,
        ...(page.nextStart === undefined ? {} : { nextPageStart: page.nextStart }),
      });
    }),
  );

  router.get(
    '/:id',
    route(async (req, res, caller) => {
      res.json(await visibleToken(caller, String(req.params['id'])));
    }),
  );

  router.patch(
    '/:id',
    route(async (req, res, caller, change) => {
      const body = jsonBody(req);
      refuseUnknownFields(body, UPDATE_FIELDS);
      if (Object.keys(body).length === 0)
        throw new ValidationError('body', 'Give at least one field to change.');
      const before = await visibleToken(caller, String(req.params['id']));
      const info = await tokens.update(
        before.id,
        {
          ...(body['name'] === undefined ? {} : { name: body['name'] as string }),
          ...restrictionFields(body),
        },
        change,
      );
      if (info === null) throw new NotFoundError();
      res.json(info);
    }),
  );

  router.post(
    '/:id/rotate',
    route(async (req, res, caller, change) => {
      const body = req.body === undefined || Object.keys(req.body ?? {}).length === 0 ? {} : jsonBody(req);
      refuseUnknownFields(body, new Set(['graceMs', 'bitbucketToken']));
      const before = await visibleToken(caller, String(req.params['id']));
      // A rotation makes a new token: whoever lost the right to create one cannot renew it either.
      assertMayCreate(caller, before.user, before.scope);
      const graceMs = body['graceMs'];
      if (graceMs !== undefined && typeof graceMs !== 'number')
        throw new ValidationError('graceMs', '`graceMs` must be a number of milliseconds.');
      const { token, info } = await tokens.rotate(
        before.id,
        { ...(graceMs === undefined ? {} : { graceMs }), ...upstreamFor(req, body, before.user) },
        change,
      );
      res.status(201).json({ token, ...info });
    }),
  );

  router.post(
    '/:id/copy',
    route(async (req, res, caller, change) => {
      const body = req.body === undefined || Object.keys(req.body ?? {}).length === 0 ? {} : jsonBody(req);
      refuseUnknownFields(body, new Set(['bitbucketToken']));
      const before = await visibleToken(caller, String(req.params['id']));
      assertMayCreate(caller, before.user, before.scope);
      const { token, info } = await tokens.copy(before.id, upstreamFor(req, body, before.user), change);
      res.status(201).json({ token, ...info });
    }),
  );

  router.delete(
    '/:id',
    route(async (req, res, caller, change) => {
      const info = await visibleToken(caller, String(req.params['id']));
      await tokens.revoke(info.id, change);
      res.status(204).end();
    }),
  );

  /** Every refusal of the management API is an `auth.denied` event, naming the logged-in caller when there is one. */
  const deny = (req: Request, res: Response, error: TokenGateError): void => {
    const user = safePrincipal(principalOf, req);
    refuse(req, res, error, context.emit, user === undefined ? {} : { user }, 'basic');
  };

  router.use((req: Request, res: Response) => {
    deny(req, res, new NotFoundError('No such resource.', 'NOT_FOUND'));
  });

  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (err instanceof TokenGateError) {
      deny(req, res, err);
      return;
    }
    // body-parser errors: malformed JSON (400), too large (413), bad charset (415).
    const status = (err as { status?: unknown })?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const error =
        status === 413
          ? new PayloadTooLargeError()
          : new ValidationError('body', 'The request body is not valid JSON.');
      deny(req, res, error);
      return;
    }
    next(err);
  });

  return router;
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** No `Content-Type` at all (no body), or `application/json` with any parameters. */
function jsonOrNothing(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  return contentType.split(';', 1)[0]!.trim().toLowerCase() === 'application/json';
}

function publicOrigin(publicUrl: unknown): string | undefined {
  if (publicUrl === undefined) return undefined;
  try {
    const url = new URL(publicUrl as string);
    if (url.protocol === 'https:' || url.protocol === 'http:') return url.origin;
  } catch {
    // Reported below.
  }
  throw new TypeError(`\`publicUrl\` must be an absolute http(s) URL: ${JSON.stringify(publicUrl)}`);
}

/**
 * Browsers may send cached Basic credentials or cookies with a cross-site form: a change is
 * refused when the browser says it comes from another site (`Sec-Fetch-Site`, `Origin`: the
 * pages' check), and a body must be JSON, which no HTML form can send (415 for a form or text
 * body). curl and scripts send neither header and no body where none is needed: unaffected.
 */
function sameSiteChangesOnly(context: ManagementContext, expectedOrigin: string | undefined) {
  return function sameSiteChangesOnlyMiddleware(req: Request, res: Response, next: NextFunction): void {
    if (!STATE_CHANGING.has(req.method)) {
      next();
      return;
    }
    let error: TokenGateError | undefined;
    if (!fromOwnPages(req, expectedOrigin))
      error = new ForbiddenError(
        'CSRF_REJECTED',
        'Changes through the management API cannot come from another site.',
      );
    else if (!jsonOrNothing(req.headers['content-type'])) error = new UnsupportedMediaTypeError();
    if (error === undefined) next();
    else {
      res.setHeader('Cache-Control', 'no-store');
      refuse(req, res, error, context.emit, {}, 'basic');
    }
  };
}

function safePrincipal(principalOf: (req: Request) => string | undefined, req: Request): string | undefined {
  try {
    return principalOf(req);
  } catch {
    return undefined;
  }
}

type RestrictionFields = Pick<CreateTokenInput, 'allowedIps' | 'requiredHeaders' | 'resources' | 'rateLimit'>;

/** The restriction fields present in a body, as given: the token service validates them. */
function restrictionFields(body: Record<string, unknown>): RestrictionFields {
  const out: Record<string, unknown> = {};
  for (const key of ['allowedIps', 'requiredHeaders', 'resources', 'rateLimit'] as const)
    if (body[key] !== undefined) out[key] = body[key];
  return out as RestrictionFields;
}

/**
 * A request that carries a token may do one thing here: `DELETE /<its own id>`, revoking
 * itself (a kill switch for a leaked token). Everything else needs the owner's login.
 */
function tokensMayOnlyRevokeThemselves(context: ManagementContext) {
  const { tokens } = context;
  return (req: Request, res: Response, next: NextFunction): void => {
    const record = verifiedRecord(req.auth);
    const credentials = record === undefined ? parseAuthorization(req, tokens.tokenPrefix) : undefined;
    if (record === undefined && credentials?.kind !== 'token') {
      next();
      return;
    }
    res.setHeader('Cache-Control', 'no-store');
    const selfRevoke = (info: TokenInfo | null): void => {
      if (info === null) {
        const invalid = new AuthenticationError(
          'TOKEN_INVALID',
          'The API token is invalid, expired or revoked.',
        );
        refuse(req, res, invalid, context.emit);
        return;
      }
      const id = req.method === 'DELETE' ? /^\/([0-9A-Za-z]{11})\/?$/.exec(req.path)?.[1] : undefined;
      if (id !== info.id) {
        const error =
          req.method === 'POST' && req.path === '/'
            ? new ForbiddenError(
                'TOKEN_CANNOT_MINT',
                'API tokens cannot create tokens. Log in with your account.',
              )
            : new ForbiddenError(
                'TOKEN_CANNOT_MANAGE',
                'An API token can only revoke itself here. Log in with your account to manage tokens.',
              );
        refuse(req, res, error, context.emit, { tokenId: info.id, user: info.user });
        return;
      }
      const change = { actor: info.user, clientIp: context.resolveClientIp(req)?.text ?? null };
      tokens.revoke(info.id, change).then(() => res.status(204).end(), next);
    };
    if (record !== undefined) selfRevoke(toTokenInfo(record));
    else if (credentials?.kind === 'token') tokens.verify(credentials.token).then(selfRevoke, next);
  };
}
