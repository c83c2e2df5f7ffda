import type { RequestHandler } from 'express';
import { ForbiddenError, MethodNotAllowedError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse, refuseOrFail } from '../http/respond.js';
import { SCOPES, type Scope } from '../model.js';
import { requiredScope, type ScopeNeed } from '../request/scope-rules.js';

export interface RequireScopeOptions {
  /**
   * Methods beyond the standard ones that tokens may use, with the scope each needs, e.g.
   * `{ PROPFIND: 'read' }`. Default: none; any other method is refused (405).
   */
  extraMethods?: Readonly<Record<string, Scope>>;
  onEvent?: EventListener;
}

const METHOD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Lets a token request through only when the token's scope covers it: `read` for GET, HEAD,
 * OPTIONS and git clone/fetch; `write` for everything else it allows, including git push.
 * Other methods are refused (405). Password and anonymous requests are not judged.
 * @example app.use(requireScope({ extraMethods: { PROPFIND: 'read' } }))
 */
export function requireScope(options: Readonly<RequireScopeOptions> = {}): RequestHandler {
  const extra = new Map<string, Scope>();
  for (const [method, scope] of Object.entries(options.extraMethods ?? {})) {
    if (!METHOD_NAME.test(method) || !SCOPES.includes(scope)) {
      throw new TypeError(`\`extraMethods.${method}\` must map a method name to 'read' or 'write'`);
    }
    extra.set(method.toUpperCase(), scope);
  }
  const emit = safeEmitter(options.onEvent);

  return function requireScopeMiddleware(req, res, next) {
    const auth = req.auth;
    if (auth?.kind !== 'token' || auth.token === undefined) {
      next();
      return;
    }
    const token = auth.token;
    const known = { tokenId: token.id, user: token.user };
    const decide = (need: ScopeNeed) => {
      if ('unknownMethod' in need) {
        refuse(req, res, new MethodNotAllowedError(), emit, known);
        return;
      }
      auth.requiredScope = need.scope;
      if (need.scope === 'write' && token.scope !== 'write') {
        const message = 'This API token is read-only; this request needs a token with write scope.';
        refuse(req, res, new ForbiddenError('SCOPE_INSUFFICIENT', message), emit, known);
        return;
      }
      next();
    };
    const need = requiredScope(req, extra);
    if ('then' in need) need.then(decide, refuseOrFail(req, res, next, emit));
    else decide(need);
  };
}
