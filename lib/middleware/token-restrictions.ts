import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { parseIpCached } from '../client-address/ip.js';
import { compileIpList, type IpMatcher } from '../client-address/ip-list.js';
import {
  CLIENT_IP_OPTIONS,
  type ClientIpOptions,
  createClientIpResolver,
} from '../client-address/resolver.js';
import { ForbiddenError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse, refuseOrFail } from '../http/respond.js';
import { array, func, string, validateOptions } from '../internal/options.js';
import type { TokenInfo } from '../model.js';
import { bodyRoute, judgeBody } from '../request/resource-body.js';
import {
  compileExemptPaths,
  pathTarget,
  prefixSegments,
  type ResourcePathRules,
} from '../request/resource-path.js';
import { middlewareOf, type Step } from '../request/step.js';
import { compileResourcePatterns, type ResourceTarget } from '../tokens/resource-pattern.js';
import { ipNotAllowed } from './ip-allowlist.js';

/**
 * Options of `tokenRestrictions`.
 * @example
 * // Replaces the default list: keep what clients read to start, add the dashboard.
 * const unrestrictedPaths = [
 *   '/rest/api/1.0/application-properties',
 *   '/rest/api/1.0/users/{user}',
 *   '/rest/api/1.0/dashboard/pull-requests',
 * ];
 * const options: TokenRestrictionsOptions = { unrestrictedPaths };
 * app.use(clientIp(), extractCredentials(), authenticateToken({ tokens }), tokenRestrictions(options));
 */
export interface TokenRestrictionsOptions extends ClientIpOptions {
  /** Path prefixes of git smart-HTTP and LFS URLs. Default `['/scm/']`. */
  gitPrefixes?: readonly string[];
  /** Path prefixes of REST URLs. Default `['/rest/']`. */
  restPrefixes?: readonly string[];
  /**
   * Paths a `resources`-restricted token may call although they name no project or
   * repository (`*` = any one segment, `{user}` = the token's owner). Default: the owner's
   * profile and the application properties, which clients read to start.
   */
  unrestrictedPaths?: readonly string[];
  /** Receives an `auth.denied` event for every refusal. Default: none. */
  onEvent?: EventListener;
}

export const DEFAULT_UNRESTRICTED_PATHS = ['/rest/api/*/application-properties', '/rest/api/*/users/{user}'];

const pathList = array(string({ pattern: /^\// }));
export const TOKEN_RESTRICTIONS_OPTIONS = {
  ...CLIENT_IP_OPTIONS,
  gitPrefixes: pathList,
  restPrefixes: pathList,
  unrestrictedPaths: pathList,
  onEvent: func,
};

interface Compiled {
  ips: IpMatcher | null;
  headers: Array<[name: string, digest: Buffer]> | null;
  resources: ((target: ResourceTarget) => boolean) | null;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

function compile(token: TokenInfo): Compiled {
  return {
    ips: token.allowedIps === null ? null : compileIpList(token.allowedIps, 'allowedIps'),
    headers:
      token.requiredHeaders === null
        ? null
        : Object.entries(token.requiredHeaders).map(([name, value]) => [name, digest(value)]),
    resources: token.resources === null ? null : compileResourcePatterns(token.resources),
  };
}

/**
 * Enforces a token's own restrictions (`allowedIps`, `requiredHeaders`, `resources`) after
 * `authenticateToken`. Restrictions only narrow: an address must pass the gate's allowlist and
 * the token's; a path that names no project or repository, or that could be read two ways, is
 * refused to a `resources`-restricted token (fail closed). Unrestricted tokens cost one check.
 * `allowedIps` is judged on `req.auth.clientIp`: put `clientIp` first, or every token with
 * `allowedIps` is refused (the address is unknown).
 * @example app.use(clientIp(), extractCredentials(), authenticateToken({ tokens }), tokenRestrictions())
 */
export function tokenRestrictions(options: Readonly<TokenRestrictionsOptions> = {}): RequestHandler {
  return middlewareOf(tokenRestrictionsStep(options));
}

/** `tokenRestrictions` as a step of `protect()`. */
export function tokenRestrictionsStep(options: Readonly<TokenRestrictionsOptions>): Step {
  validateOptions<TokenRestrictionsOptions>(options, TOKEN_RESTRICTIONS_OPTIONS);
  const paths: ResourcePathRules = {
    git: (options.gitPrefixes ?? ['/scm/']).map(prefixSegments),
    rest: (options.restPrefixes ?? ['/rest/']).map(prefixSegments),
  };
  const exempt = compileExemptPaths(options.unrestrictedPaths ?? DEFAULT_UNRESTRICTED_PATHS);
  // Used alone (without `clientIp` before it), the address is resolved here.
  const resolve = createClientIpResolver({
    ...(options.trustedProxies === undefined ? {} : { trustedProxies: options.trustedProxies }),
    ...(options.clientIpHeader === undefined ? {} : { clientIpHeader: options.clientIpHeader }),
  });
  const emit = safeEmitter(options.onEvent);
  // Compiled once per token info (one per cached record), so a restricted token pays microseconds.
  const compiled = new WeakMap<TokenInfo, Compiled>();

  return function tokenRestrictionsStep(req, res, auth, next) {
    const token = auth.kind === 'token' ? auth.token : undefined;
    if (
      token === undefined ||
      (token.allowedIps === null && token.requiredHeaders === null && token.resources === null)
    ) {
      next();
      return;
    }
    let rules = compiled.get(token);
    if (rules === undefined) {
      rules = compile(token);
      compiled.set(token, rules);
    }
    const known = { tokenId: token.id, user: token.user };
    if (rules.ips !== null) {
      const resolved = auth.clientIp;
      const address =
        resolved === undefined ? resolve(req) : resolved === null ? null : parseIpCached(resolved);
      if (address === null || !rules.ips(address)) {
        refuse(req, res, ipNotAllowed(address?.text ?? null, 'allowedIps'), emit, known);
        return;
      }
    }
    if (rules.headers !== null) {
      for (const [name, expected] of rules.headers) {
        const sent = req.headers[name];
        if (typeof sent !== 'string' || !timingSafeEqual(digest(sent), expected)) {
          const message = `This API token may only be used with the ${name} header it was created with.`;
          const error = new ForbiddenError('HEADER_REQUIRED', message, { restriction: 'requiredHeaders' });
          refuse(req, res, error, emit, known);
          return;
        }
      }
    }
    if (rules.resources !== null) {
      const url = req.originalUrl ?? req.url;
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const target = pathTarget(path, paths);
      const allowed =
        target.kind === 'target'
          ? rules.resources(target.target)
          : target.kind === 'none' && exempt(target.segments, token.user);
      if (!allowed) {
        const message = 'This API token may not access this project or repository.';
        const error = new ForbiddenError('RESOURCE_NOT_ALLOWED', message, { restriction: 'resources' });
        refuse(req, res, error, emit, known);
        return;
      }
      // A few bodies name a project or repository of their own (forks, moves, pull requests).
      const route = target.kind === 'target' ? bodyRoute(path, paths.rest) : undefined;
      if (route !== undefined) {
        const query = q < 0 ? '' : url.slice(q + 1);
        judgeBody(req, route, query, token.user, rules.resources).then(
          (verdict) => {
            if (verdict === undefined) next();
            else if ('outside' in verdict) {
              const { project, repo } = verdict.outside;
              const named = JSON.stringify(repo === undefined ? project : `${project}/${repo}`);
              const message = `This API token may not name ${named} in the request body: it is outside the token's resources.`;
              refuse(req, res, new ForbiddenError('RESOURCE_NOT_ALLOWED', message), emit, known);
            } else {
              const message = `This API token may only send this request with a body the gate can judge: ${verdict.unjudgeable}.`;
              refuse(req, res, new ForbiddenError('RESOURCE_BODY_UNREADABLE', message), emit, known);
            }
          },
          refuseOrFail(req, res, next, emit),
        );
        return;
      }
    }
    next();
  };
}
