import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ForbiddenError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { compilePermission, type GroupsOption, groupsOf, toGroupResolver } from '../groups/group-resolver.js';
import { refuse, refuseOrFail } from '../http/respond.js';
import { any, array, either, func, oneOf, record, string, validateOptions } from '../internal/options.js';
import type { AuthContext } from '../request/auth-context.js';
import { middlewareOf, type Step } from '../request/step.js';

/**
 * Options of `requireGroups`.
 * @example
 * const options: RequireGroupsOptions = {
 *   groups: ['api-users'],
 *   resolver: { alice: ['api-users'] },
 *   kinds: ['token', 'password'],
 * };
 * app.use(requireGroups(options));
 */
export interface RequireGroupsOptions {
  /** Groups whose members pass. Omitted = everyone, `[]` = no one. */
  groups?: readonly string[];
  /**
   * Where memberships come from: a `GroupResolver` or a `{ user: [groups] }` map. Default:
   * nobody is in any group.
   */
  resolver?: GroupsOption;
  /** Which requests are judged. Default `['token']`: token requests only. */
  kinds?: ReadonlyArray<'token' | 'password'>;
  /** Receives an `auth.denied` event for every refusal. Default: none. */
  onEvent?: EventListener;
}

/**
 * Lets a request through only when its user is in one of `groups` (403 otherwise). The gate
 * uses it for the `useTokens` permission. Memberships are resolved once per request; a failing
 * resolver answers 503.
 * @example app.use(requireGroups({ groups: ['api-users'], resolver: staticGroups({ alice: ['api-users'] }) }))
 */
export function requireGroups(options: Readonly<RequireGroupsOptions>): RequestHandler {
  return middlewareOf(requireGroupsStep(options));
}

/** `requireGroups` as a step of `protect()`. */
export function requireGroupsStep(options: Readonly<RequireGroupsOptions>): Step {
  validateOptions<RequireGroupsOptions>(options, {
    groups: any,
    resolver: either(func, record(array(string()))),
    kinds: array(oneOf(['token', 'password'])),
    onEvent: func,
  });
  const permission = compilePermission(options.groups, 'groups');
  const resolver = toGroupResolver(options.resolver);
  const kinds = new Set(options.kinds ?? ['token']);
  const emit = safeEmitter(options.onEvent);

  const decide = (
    req: Request,
    res: Response,
    auth: AuthContext,
    next: NextFunction,
    groups: readonly string[],
  ): void => {
    if (permission.allows(groups)) {
      next();
      return;
    }
    const error = new ForbiddenError('GROUP_REQUIRED', 'You are not in a group that may use API tokens.');
    refuse(req, res, error, emit, {
      ...(auth.token ? { tokenId: auth.token.id } : {}),
      user: auth.user ?? '',
    });
  };

  return function requireGroupsStep(req, res, auth, next) {
    if (permission.everyone || auth.kind === 'anonymous' || !kinds.has(auth.kind)) {
      next();
      return;
    }
    let groups: readonly string[] | Promise<readonly string[]>;
    try {
      groups = groupsOf(auth.user ?? '', resolver);
    } catch (err) {
      refuseOrFail(req, res, next, emit)(err);
      return;
    }
    // A synchronous resolver (a static map) answers on the spot: no promise, no closure.
    if (Array.isArray(groups)) decide(req, res, auth, next, groups);
    else
      (groups as Promise<readonly string[]>).then(
        (resolved) => decide(req, res, auth, next, resolved),
        refuseOrFail(req, res, next, emit),
      );
  };
}
