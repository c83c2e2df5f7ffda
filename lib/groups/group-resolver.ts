import { TokenGateError, UnavailableError } from '../errors.js';
import { foldName, groupNameProblem, validateUser } from '../validate.js';

/**
 * The groups a user is in. May be async (a directory, Bitbucket). Throwing fails closed (503).
 * @example
 * const groups: GroupResolver = async (user) => (user.endsWith('-bot') ? ['automation'] : ['developers']);
 * createTokenGate({ groups, permissions: { createWriteTokens: ['developers'] } });
 */
export type GroupResolver = (user: string) => readonly string[] | Promise<readonly string[]>;

/**
 * The `groups` option: a resolver, or a static `{ user: [groups] }` map.
 * @example
 * const groups: GroupsOption = { alice: ['developers'], 'ci-bot': ['automation'] };
 * createTokenGate({ groups });
 */
export type GroupsOption = GroupResolver | Readonly<Record<string, readonly string[]>>;

/**
 * A resolver over a fixed map of user → groups. User names match case-insensitively; names like
 * `__proto__` or `toString` are plain keys, never inherited properties.
 * @example staticGroups({ alice: ['developers'], ci: ['automation'] })
 */
export function staticGroups(map: Readonly<Record<string, readonly string[]>>): GroupResolver {
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw new TypeError('`groups` must be an object of user → groups');
  const byUser = new Map<string, readonly string[]>();
  for (const [user, groups] of Object.entries(map)) {
    if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) {
      throw new TypeError(`\`groups[${JSON.stringify(user)}]\` must be an array of group names`);
    }
    try {
      validateUser(user);
    } catch (err) {
      throw new TypeError(`\`groups\` names a user that cannot log in: ${(err as Error).message}`);
    }
    for (const [i, g] of groups.entries()) assertGroupName(g, `groups[${JSON.stringify(user)}][${i}]`);
    const key = foldName(user);
    byUser.set(key, Object.freeze([...(byUser.get(key) ?? []), ...groups]));
  }
  // Most lookups name a user exactly as the map does: only a miss pays for folding.
  return (user) => byUser.get(user) ?? byUser.get(foldName(user)) ?? NO_GROUPS;
}

const NO_GROUPS: readonly string[] = Object.freeze([]);

/** Group names given in options follow the naming rule of user names (see `validateUser`). */
function assertGroupName(group: string, option: string): void {
  const problem = groupNameProblem(group);
  if (problem !== undefined) throw new TypeError(`\`${option}\` ${problem}: ${JSON.stringify(group)}`);
}

/** Resolves the `groups` option. Default: nobody is in any group. */
export function toGroupResolver(option: GroupsOption | undefined): GroupResolver {
  if (option === undefined) return () => [];
  return typeof option === 'function' ? option : staticGroups(option);
}

type Groups = readonly string[];

function unavailable(err: unknown): TokenGateError {
  if (err instanceof TokenGateError) return err;
  return new UnavailableError(
    'UPSTREAM_UNAVAILABLE',
    'Group membership could not be checked. Try again later.',
    { cause: err },
  );
}

function checked(result: unknown): Groups {
  if (!Array.isArray(result)) throw new TypeError('a GroupResolver must return an array of group names');
  return result;
}

/**
 * The user's groups. A synchronous resolver answers synchronously (no promise on the request
 * path); a failing one fails closed (503).
 */
export function groupsOf(user: string, resolver: GroupResolver): Groups | Promise<Groups> {
  let result: Groups | Promise<Groups>;
  try {
    result = resolver(user);
  } catch (err) {
    throw unavailable(err);
  }
  if (Array.isArray(result)) return checked(result);
  return Promise.resolve(result).then(checked, (err: unknown) => Promise.reject(unavailable(err)));
}

/** A compiled permission: omitted = everyone, `[]` = no one, else members of any listed group. */
export interface Permission {
  readonly everyone: boolean;
  allows(groups: readonly string[]): boolean;
}

export function compilePermission(groups: readonly string[] | undefined, option: string): Permission {
  if (groups === undefined) return { everyone: true, allows: () => true };
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string' && g.length > 0)) {
    throw new TypeError(`\`${option}\` must be an array of group names`);
  }
  for (const [i, g] of groups.entries()) assertGroupName(g, `${option}[${i}]`);
  const wanted = new Set(groups.map(foldName));
  // Resolvers hand out the same (frozen) arrays again and again: judge each array once.
  const judged = new WeakMap<readonly string[], boolean>();
  return {
    everyone: false,
    allows(held) {
      let allowed = judged.get(held);
      if (allowed === undefined) {
        allowed = held.some((g) => typeof g === 'string' && wanted.has(foldName(g)));
        if (Object.isFrozen(held)) judged.set(held, allowed);
      }
      return allowed;
    },
  };
}
