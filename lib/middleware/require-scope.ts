import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ForbiddenError, MethodNotAllowedError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse, refuseOrFail } from '../http/respond.js';
import { array, func, oneOf, record, string, validateOptions } from '../internal/options.js';
import { HTTP_TOKEN } from '../internal/regexp.js';
import { SCOPES, type Scope } from '../model.js';
import type { AuthContext } from '../request/auth-context.js';
import { compileScopeRules, requiredScope, type ScopeNeed } from '../request/scope-rules.js';
import { middlewareOf, type Step } from '../request/step.js';

/**
 * Options of `requireScope`.
 * @example
 * const options: RequireScopeOptions = {
 *   extraMethods: { PROPFIND: 'read' },
 *   gitPrefixes: ['/scm/', '/git/'],
 * };
 * app.use(requireScope(options));
 */
export interface RequireScopeOptions {
  /**
   * Methods beyond the standard ones that tokens may use, with the scope each needs, e.g.
   * `{ PROPFIND: 'read' }`. Default: none; any other method is refused (405).
   */
  extraMethods?: Readonly<Record<string, Scope>>;
  /**
   * Path prefixes of git smart-HTTP and Git LFS URLs (`<prefix><project>/<repo>[.git]/…`): only
   * there can a POST be a read (a fetch, an LFS download). Default `['/scm/']`.
   */
  gitPrefixes?: readonly string[];
  /** Receives an `auth.denied` event for every refusal. Default: none. */
  onEvent?: EventListener;
}

const METHOD_NAME = HTTP_TOKEN;

export const REQUIRE_SCOPE_OPTIONS = {
  extraMethods: record(oneOf(SCOPES)),
  gitPrefixes: array(string({ pattern: /^\// })),
  onEvent: func,
};

/**
 * Lets a token request through only when the token's scope covers it: `read` for GET, HEAD,
 * OPTIONS and git clone/fetch; `write` for everything else it allows, including git push.
 * Other methods are refused (405). Password and anonymous requests are not judged.
 * @example app.use(requireScope({ extraMethods: { PROPFIND: 'read' } }))
 */
export function requireScope(options: Readonly<RequireScopeOptions> = {}): RequestHandler {
  return middlewareOf(requireScopeStep(options));
}

/** `requireScope` as a step of `protect()`. */
export function requireScopeStep(options: Readonly<RequireScopeOptions>): Step {
  validateOptions<RequireScopeOptions>(options, REQUIRE_SCOPE_OPTIONS);
  const extra = new Map<string, Scope>();
  for (const [method, scope] of Object.entries(options.extraMethods ?? {})) {
    if (!METHOD_NAME.test(method))
      throw new TypeError(`\`extraMethods.${method}\` is not an HTTP method name`);
    extra.set(method.toUpperCase(), scope);
  }
  const rules = compileScopeRules(extra, options.gitPrefixes);
  const emit = safeEmitter(options.onEvent);

  const decide = (
    req: Request,
    res: Response,
    auth: AuthContext,
    next: NextFunction,
    need: ScopeNeed,
  ): void => {
    const token = auth.token!;
    if ('unknownMethod' in need) {
      refuse(req, res, new MethodNotAllowedError(), emit, { tokenId: token.id, user: token.user });
      return;
    }
    auth.requiredScope = need.scope;
    if (need.scope === 'write' && token.scope !== 'write') {
      const message = 'This API token is read-only; this request needs a token with write scope.';
      refuse(req, res, new ForbiddenError('SCOPE_INSUFFICIENT', message, { scope: 'write' }), emit, {
        tokenId: token.id,
        user: token.user,
      });
      return;
    }
    next();
  };

  return function requireScopeStep(req, res, auth, next) {
    if (auth.kind !== 'token' || auth.token === undefined) {
      next();
      return;
    }
    const need = requiredScope(req, rules);
    // Only a Git LFS batch request waits for its body; everything else is judged on the spot.
    if ('then' in need)
      need.then((judged) => decide(req, res, auth, next, judged), refuseOrFail(req, res, next, emit));
    else decide(req, res, auth, next, need);
  };
}
