import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import {
  AuthenticationError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  TokenGateError,
  ValidationError,
} from '../errors.js';
import type { EventListener, TokenChangedEvent } from '../events.js';
import { type GroupResolver, groupsOf, type Permission } from '../groups/group-resolver.js';
import {
  daysToMs,
  isDayCount,
  parseInstant,
  sameUser,
  validateName,
  validateScope,
  validateUser,
} from '../internal/validate.js';
import type { ClientIpResolver } from '../middleware/client-ip.js';
import type { TokenInfo } from '../model.js';
import { parseAuthorization } from '../request/authorization-header.js';
import { isTokenRequest } from '../request/credential-slot.js';
import type { TokenQuery } from '../stores/token-store.js';
import type { TokenService } from '../tokens/service.js';
import { sendError } from './respond.js';

export interface RouterOptions {
  /**
   * Who is calling: a user name, or undefined when nobody is logged in (401). Default: reads
   * `req.user` as a string or its `name`, `username` or `slug` (what `bitbucketLogin` sets).
   */
  principal?: (req: Request) => string | undefined;
}

/** What the router needs from the gate. */
export interface RouterContext {
  tokens: TokenService;
  groups: GroupResolver;
  permissions: { createTokens: Permission; createWriteTokens: Permission; manageOthers: Permission };
  expiryMaxDays: number | undefined;
  resolveClientIp: ClientIpResolver;
  emit: EventListener;
}

const DEFAULT_LIMIT = 25;
const MAX_LIMIT = 1_000;
const CREATE_FIELDS = new Set(['name', 'scope', 'expiresInDays', 'expiresAt', 'user']);

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

function jsonBody(req: Request): Record<string, unknown> {
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !req.is('application/json')) {
    throw new ValidationError('body', 'Send a JSON object with Content-Type: application/json.');
  }
  return body as Record<string, unknown>;
}

function refuseUnknownFields(body: Record<string, unknown>, allowed: ReadonlySet<string>): void {
  for (const key of Object.keys(body)) {
    if (!allowed.has(key)) throw new ValidationError(key, `Unknown field \`${key}\`.`);
  }
}

function queryString(req: Request, name: string): string | undefined {
  const value = (req.query as Record<string, unknown>)[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ValidationError(name, `\`${name}\` must be given once.`);
  return value;
}

function queryInteger(req: Request, name: string, fallback: number, min: number, max: number): number {
  const value = queryString(req, name);
  if (value === undefined) return fallback;
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ValidationError(name, `\`${name}\` must be a whole number from ${min} to ${max}.`);
  }
  return Number(value);
}

/**
 * The management API: create, list, read, rename and revoke tokens, with the gate's group
 * permissions. Mount it behind your own login (or `bitbucketLogin`).
 */
export function createRouter(context: RouterContext, options: Readonly<RouterOptions> = {}): Router {
  const principalOf = options.principal ?? defaultPrincipal;
  if (typeof principalOf !== 'function') throw new TypeError('`principal` must be a function of the request');
  const { tokens, permissions, emit } = context;
  const router = express.Router();
  router.use(express.json({ limit: '16kb', strict: true }));

  interface Caller {
    name: string;
    groups: readonly string[];
    manager: boolean;
  }

  async function callerOf(req: Request): Promise<Caller> {
    let name: string | undefined;
    try {
      name = principalOf(req);
      if (name !== undefined) validateUser(name);
    } catch {
      name = undefined;
    }
    if (name === undefined)
      throw new AuthenticationError('NOT_AUTHENTICATED', 'Log in to manage API tokens.');
    const groups = await groupsOf(req, name, context.groups);
    return { name, groups, manager: permissions.manageOthers.allows(groups) };
  }

  /** Someone else's token is "not found" to a caller who may not manage others. */
  async function visibleToken(caller: Caller, id: string): Promise<TokenInfo> {
    const info = await tokens.get(id);
    if (info === null || (!caller.manager && !sameUser(info.user, caller.name))) throw new NotFoundError();
    return info;
  }

  function report(req: Request, type: TokenChangedEvent['type'], actor: string, info: TokenInfo): void {
    emit({
      type,
      time: new Date().toISOString(),
      clientIp: context.resolveClientIp(req)?.text ?? null,
      actor,
      user: info.user,
      tokenId: info.id,
      name: info.name,
    });
  }

  const handle =
    (work: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction) => {
      res.setHeader('Cache-Control', 'no-store');
      work(req, res).catch(next);
    };

  router.post(
    '/',
    handle(async (req, res) => {
      // Tokens must not mint tokens, however the request reached us.
      if (
        req.auth?.kind === 'token' ||
        isTokenRequest(req) ||
        parseAuthorization(req, tokens.tokenPrefix).kind === 'token'
      ) {
        throw new ForbiddenError(
          'TOKEN_CANNOT_MINT',
          'API tokens cannot create tokens. Log in with your account.',
        );
      }
      const caller = await callerOf(req);
      const body = jsonBody(req);
      refuseUnknownFields(body, CREATE_FIELDS);
      const name = validateName(body['name']);
      const scope = validateScope(body['scope']);
      const owner = body['user'] === undefined ? caller.name : validateUser(body['user']);
      if (!permissions.createTokens.allows(caller.groups)) {
        throw new ForbiddenError('PERMISSION_DENIED', 'You may not create API tokens.');
      }
      if (scope === 'write' && !permissions.createWriteTokens.allows(caller.groups)) {
        throw new ForbiddenError('PERMISSION_DENIED', 'You may not create API tokens with write scope.');
      }
      if (!sameUser(owner, caller.name) && !caller.manager) {
        throw new ForbiddenError('PERMISSION_DENIED', 'You may not create API tokens for other users.');
      }
      let expiresAt: number | null = null;
      if (body['expiresInDays'] !== undefined && body['expiresAt'] !== undefined) {
        throw new ValidationError('expiresInDays', 'Give `expiresInDays` or `expiresAt`, not both.');
      }
      if (body['expiresInDays'] !== undefined) {
        const days = body['expiresInDays'];
        if (!isDayCount(days))
          throw new ValidationError('expiresInDays', '`expiresInDays` must be a whole number of days.');
        if (context.expiryMaxDays !== undefined && days > context.expiryMaxDays) {
          throw new ValidationError(
            'expiresInDays',
            `\`expiresInDays\` may be at most ${context.expiryMaxDays}.`,
          );
        }
        expiresAt = Date.now() + daysToMs(days);
      } else if (body['expiresAt'] !== undefined) {
        expiresAt = parseInstant(body['expiresAt'], 'expiresAt');
      }
      const { token, info } = await tokens.create({
        user: owner,
        name,
        scope,
        createdBy: caller.name,
        ...(expiresAt === null ? {} : { expiresAt: new Date(expiresAt) }),
      });
      report(req, 'token.created', caller.name, info);
      res.status(201).json({ token, ...info });
    }),
  );

  router.get(
    '/',
    handle(async (req, res) => {
      const caller = await callerOf(req);
      const user = queryString(req, 'user');
      const everyone = queryString(req, 'all') === 'true';
      if (user !== undefined) validateUser(user);
      if ((everyone || (user !== undefined && !sameUser(user, caller.name))) && !caller.manager) {
        throw new ForbiddenError('PERMISSION_DENIED', 'You may only list your own API tokens.');
      }
      const start = queryInteger(req, 'start', 0, 0, 1e9);
      const limit = queryInteger(req, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT);
      const query: TokenQuery = { start, limit };
      if (!everyone || user !== undefined) query.user = user ?? caller.name;
      const name = queryString(req, 'name');
      if (name !== undefined) query.name = name;
      const scope = queryString(req, 'scope');
      if (scope !== undefined) query.scope = validateScope(scope);
      for (const field of ['expiresBefore', 'lastUsedBefore', 'createdAfter'] as const) {
        const value = parseInstant(queryString(req, field), field);
        if (value !== null) query[field] = value;
      }
      const page = await tokens.search(query);
      res.json({
        values: page.values,
        size: page.values.length,
        limit,
        start,
        isLastPage: page.isLastPage,
        ...(page.nextStart === undefined ? {} : { nextPageStart: page.nextStart }),
      });
    }),
  );

  router.get(
    '/:id',
    handle(async (req, res) => {
      const caller = await callerOf(req);
      res.json(await visibleToken(caller, String(req.params['id'])));
    }),
  );

  router.patch(
    '/:id',
    handle(async (req, res) => {
      const caller = await callerOf(req);
      const body = jsonBody(req);
      refuseUnknownFields(body, new Set(['name']));
      const name = validateName(body['name']);
      const before = await visibleToken(caller, String(req.params['id']));
      const info = await tokens.rename(before.id, name);
      if (info === null) throw new NotFoundError();
      report(req, 'token.renamed', caller.name, info);
      res.json(info);
    }),
  );

  router.delete(
    '/:id',
    handle(async (req, res) => {
      const caller = await callerOf(req);
      const info = await visibleToken(caller, String(req.params['id']));
      await tokens.revoke(info.id);
      report(req, 'token.revoked', caller.name, info);
      res.status(204).end();
    }),
  );

  router.use((req: Request, res: Response) => {
    sendError(req, res, new NotFoundError('No such resource.', 'NOT_FOUND'));
  });

  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (err instanceof TokenGateError) {
      sendError(req, res, err);
      return;
    }
    // body-parser errors: malformed JSON (400), too large (413), bad charset (415).
    const status = (err as { status?: unknown })?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      sendError(
        req,
        res,
        status === 413
          ? new PayloadTooLargeError()
          : new ValidationError('body', 'The request body is not valid JSON.'),
      );
      return;
    }
    next(err);
  });

  return router;
}
