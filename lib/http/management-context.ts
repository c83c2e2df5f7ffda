import type { ClientIpResolver } from '../client-address/resolver.js';
import { AuthenticationError, ForbiddenError } from '../errors.js';
import type { EventListener } from '../events.js';
import { type GroupResolver, groupsOf, type Permission } from '../groups/group-resolver.js';
import type { Scope } from '../model.js';
import type { LoginThrottle } from '../throttle/login-throttle.js';
import type { ExpiryPolicy, TokenService } from '../tokens/service.js';
import { sameUser, validateUser } from '../validate.js';

/**
 * What the management API and the token pages need from the gate. Both act through
 * `tokens` (never a store) and judge callers with the same permissions.
 */
export interface ManagementContext {
  tokens: TokenService;
  groups: GroupResolver;
  permissions: { createTokens: Permission; createWriteTokens: Permission; manageOthers: Permission };
  expiry: ExpiryPolicy;
  resolveClientIp: ClientIpResolver;
  emit: EventListener;
  /** Failed logins (management API, token pages): throttled per address and per address + user. */
  loginThrottle: LoginThrottle;
}

/** A logged-in caller and what the gate's permissions let them do. */
export interface Caller {
  name: string;
  groups: readonly string[];
  /** In `manageOthers`: may see and change everyone's tokens. */
  manager: boolean;
  mayCreate: boolean;
  mayCreateWrite: boolean;
}

/** Resolves a principal into a `Caller`; no (or an invalid) name is a 401. */
export async function resolveCaller(context: ManagementContext, name: string | undefined): Promise<Caller> {
  let valid: string | undefined;
  try {
    if (name !== undefined) valid = validateUser(name);
  } catch {
    valid = undefined;
  }
  if (valid === undefined) throw new AuthenticationError('NOT_AUTHENTICATED', 'Log in to manage API tokens.');
  const groups = await groupsOf(valid, context.groups);
  const { permissions } = context;
  return {
    name: valid,
    groups,
    manager: permissions.manageOthers.allows(groups),
    mayCreate: permissions.createTokens.allows(groups),
    mayCreateWrite: permissions.createTokens.allows(groups) && permissions.createWriteTokens.allows(groups),
  };
}

/** Throws 403 unless `caller` may create a token of `scope` for `owner`. */
export function assertMayCreate(caller: Caller, owner: string, scope: Scope): void {
  if (!caller.mayCreate) throw new ForbiddenError('PERMISSION_DENIED', 'You may not create API tokens.');
  if (scope === 'write' && !caller.mayCreateWrite)
    throw new ForbiddenError('PERMISSION_DENIED', 'You may not create API tokens with write scope.');
  if (!sameUser(owner, caller.name) && !caller.manager)
    throw new ForbiddenError('PERMISSION_DENIED', 'You may not create API tokens for other users.');
}

/** True when `caller` may see and change tokens of `owner`. */
export function mayManage(caller: Caller, owner: string): boolean {
  return caller.manager || sameUser(owner, caller.name);
}
