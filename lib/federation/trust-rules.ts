import { parseIp } from '../client-address/ip.js';
import { ValidationError } from '../errors.js';
import {
  array,
  boolean,
  fail,
  integer,
  oneOf,
  type Shape,
  string,
  validateOptions,
} from '../internal/options.js';
import type { Scope } from '../model.js';
import type { TokenStore } from '../stores/token-store.js';
import { validateRestrictions } from '../tokens/restrictions.js';
import { validateUser } from '../validate.js';
import {
  type ClaimConditions,
  compileClaimConditions,
  matchesAnything,
  RESERVED_CLAIMS,
} from './claim-conditions.js';

/**
 * One trust rule of the gate's `federation` option: which CI identity tokens (by issuer,
 * audience and claims) may be exchanged for an API token, and what that token gets. Rules are
 * tried in order; the first that matches wins; no match, no token.
 * @example
 * const rule: FederationRule = {
 *   name: 'deploy-main',
 *   issuer: 'https://gitlab.example.com',
 *   audience: 'https://git.example.com',
 *   claims: { project_path: 'ops/deploy', ref_type: 'branch', ref: ['main', 'release/*'] },
 *   user: 'ci-deploy',
 *   scope: 'write',
 *   resources: ['OPS/deploy'],
 *   ttlSeconds: 600,
 * };
 * createTokenGate({ store, federation: [rule] });
 */
export interface FederationRule {
  /**
   * Names the rule in events, in the issued tokens' origin and in its bound's counting group:
   * 1 to 100 printable ASCII characters without spaces. Default `'federation[<index>]'`.
   */
  name?: string;
  /**
   * The CI's issuer URL, exactly as its tokens' `iss` (its
   * `/.well-known/openid-configuration` is read for the keys). `https:` only, unless
   * `allowInsecureLoopback` and a loopback address.
   */
  issuer: string;
  /** The audience this proxy expects: the job token's `aud` must contain it. */
  audience: string;
  /**
   * Conditions on the token's claims, all of which must hold: claim name → exact value, a list
   * of values (any one), or a pattern with `*` (any run of characters). At least one condition
   * must narrow something: an issuer such as GitHub's signs the jobs of every repository.
   */
  claims: ClaimConditions;
  /** The Bitbucket user the issued token acts as. */
  user: string;
  /** `read` or `write`. */
  scope: Scope;
  /** Projects and repositories the issued token may touch (`PROJ`, `PROJ/repo`, `*`). Default: all of the user's. */
  resources?: readonly string[];
  /** Addresses and ranges the issued token may be used from. Default: any (the gate's allowlist still applies). */
  allowedIps?: readonly string[];
  /** Lifetime of the issued token in seconds: 10 to 3,600 (and within the gate's `expiry`). Default 900. */
  ttlSeconds?: number;
  /** Most live tokens issued by this rule at once. Default 1,000. */
  maxLiveTokens?: number;
  /** Allow an `http:` issuer (and JWKS) on a loopback address, for tests and local issuers. Default false. */
  allowInsecureLoopback?: boolean;
}

/** A rule ready for the exchange: every default filled in, conditions compiled. */
export interface CompiledRule {
  readonly name: string;
  readonly issuer: string;
  readonly audience: string;
  readonly matches: (claims: Record<string, unknown>) => boolean;
  readonly user: string;
  readonly scope: Scope;
  readonly resources: readonly string[] | null;
  readonly allowedIps: readonly string[] | null;
  readonly ttlSeconds: number;
  readonly maxLiveTokens: number;
  readonly allowInsecureLoopback: boolean;
}

const MAX_RULES = 1_000;
const MAX_CONDITIONS = 50;
const MAX_CONDITION_VALUES = 100;

const conditionValue = string({ maxLength: 1_000 });

const claimsCheck = (value: unknown, path: string) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail(path, 'must be an object of claim name → value, list of values or pattern');
  const entries = Object.entries(value);
  if (entries.length === 0 || entries.length > MAX_CONDITIONS)
    fail(path, `must hold 1 to ${MAX_CONDITIONS} conditions`);
  for (const [name, condition] of entries) {
    const at = `${path}.${name}`;
    if (name.length === 0 || name.length > 200) fail(at, 'is not a claim name');
    if (RESERVED_CLAIMS.has(name))
      fail(at, `cannot be a condition: the exchange checks \`${name}\` itself (use \`audience\` for aud)`);
    if (typeof condition === 'string') conditionValue(condition, at);
    else if (!Array.isArray(condition)) fail(at, 'must be a value, a pattern with `*`, or a list of them');
    else {
      array(conditionValue, { minLength: 1 })(condition, at);
      if ((condition as unknown[]).length > MAX_CONDITION_VALUES)
        fail(at, `must list at most ${MAX_CONDITION_VALUES} values`);
    }
  }
  if (entries.every(([, condition]) => matchesAnything(condition as string | string[])))
    fail(path, 'must narrow something: a condition other than `*` (e.g. the project or repository)');
};

const isLoopback = (hostname: string) => {
  const address = parseIp(hostname.replace(/^\[|\]$/g, ''));
  if (address === null) return hostname === 'localhost';
  return address.family === 4 ? address.text.startsWith('127.') : address.text === '::1';
};

/**
 * May keys be fetched from `url`? `https:`, or `http:` on a loopback address when the rule
 * allows it. No credentials, query or fragment.
 */
export function isFetchableUrl(url: URL, allowInsecureLoopback: boolean): boolean {
  if (url.username !== '' || url.password !== '' || url.hash !== '') return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && allowInsecureLoopback && isLoopback(url.hostname);
}

const RULE_SHAPE: Shape<FederationRule> = {
  name: string({ maxLength: 100, pattern: /^[\x21-\x7e]+$/ }),
  issuer: string({ maxLength: 2_000 }),
  audience: string({ maxLength: 1_000 }),
  claims: claimsCheck,
  user: string(),
  scope: oneOf(['read', 'write']),
  resources: array(string(), { minLength: 1 }),
  allowedIps: array(string(), { minLength: 1 }),
  ttlSeconds: integer(10, 3_600),
  maxLiveTokens: integer(1, 1_000_000),
  allowInsecureLoopback: boolean,
};

function checkIssuer(rule: FederationRule, path: string): void {
  let url: URL;
  try {
    url = new URL(rule.issuer);
  } catch {
    fail(`${path}.issuer`, 'must be an absolute URL');
  }
  if (url.search !== '' || !isFetchableUrl(url, rule.allowInsecureLoopback === true))
    fail(
      `${path}.issuer`,
      url.protocol === 'http:'
        ? 'must be an https: URL (plain http only on a loopback address, with `allowInsecureLoopback: true`)'
        : 'must be an https: URL without credentials, query or fragment',
    );
  if (rule.allowInsecureLoopback === true && url.protocol !== 'http:')
    fail(`${path}.allowInsecureLoopback`, 'is only for an http: issuer on a loopback address');
}

/** Turns a ValidationError of the token rules (user, restrictions) into a startup TypeError naming the option. */
function asOption<T>(path: string, work: () => T): T {
  try {
    return work();
  } catch (err) {
    if (err instanceof ValidationError) throw new TypeError(`\`${path}\`: ${err.message}`);
    throw err;
  }
}

/**
 * Throws when this gate cannot exchange job tokens: a store without `claim()` (each job token
 * is used once) or `putCounted()` (each rule bounded across the fleet), or access-token mode.
 * Checked by `createTokenGate`, before the exchange itself is loaded.
 */
export function assertFederationPossible(
  store: TokenStore,
  accessTokenMode: boolean,
): asserts store is TokenStore & Required<Pick<TokenStore, 'claim' | 'putCounted'>> {
  if (store.claim === undefined || store.putCounted === undefined)
    throw new TypeError(
      '`federation` needs a store with `claim()` and `putCounted()` (every built-in store has them): each job token is used once and each rule bounded across the fleet',
    );
  if (accessTokenMode)
    throw new TypeError(
      '`federation` cannot issue tokens in access-token mode (`upstream: bitbucketAccessTokens(...)`): each token there needs its owner’s Bitbucket credentials',
    );
}

/**
 * Validates the gate's `federation` option and compiles it: every default filled in, claim
 * conditions compiled, restrictions canonical. Throws a TypeError naming the rule and field.
 */
export function compileTrustRules(value: unknown, path = 'federation'): CompiledRule[] {
  if (!Array.isArray(value)) fail(path, 'must be an array of trust rules');
  if (value.length > MAX_RULES) fail(path, `must hold at most ${MAX_RULES} rules`);
  const names = new Set<string>();
  return value.map((rule: unknown, i) => {
    const at = `${path}[${i}]`;
    validateOptions<FederationRule>(rule, RULE_SHAPE, at);
    for (const key of ['issuer', 'audience', 'claims', 'user', 'scope'] as const)
      if (rule[key] === undefined) fail(`${at}.${key}`, 'is required');
    checkIssuer(rule, at);
    const name = rule.name ?? at;
    if (names.has(name)) fail(`${at}.name`, `repeats the name of another rule: ${JSON.stringify(name)}`);
    names.add(name);
    const user = asOption(`${at}.user`, () => validateUser(rule.user));
    const restrictions = asOption(at, () =>
      validateRestrictions({
        ...(rule.resources === undefined ? {} : { resources: rule.resources }),
        ...(rule.allowedIps === undefined ? {} : { allowedIps: rule.allowedIps }),
      }),
    );
    return {
      name,
      issuer: rule.issuer,
      audience: rule.audience,
      matches: compileClaimConditions(rule.claims),
      user,
      scope: rule.scope,
      resources: restrictions.resources ?? null,
      allowedIps: restrictions.allowedIps ?? null,
      ttlSeconds: rule.ttlSeconds ?? 900,
      maxLiveTokens: rule.maxLiveTokens ?? 1_000,
      allowInsecureLoopback: rule.allowInsecureLoopback === true,
    };
  });
}
