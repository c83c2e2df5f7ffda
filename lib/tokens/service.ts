import { DEFAULT_STORE_TIMEOUT_MS, DEFAULT_TOKEN_PREFIX } from '../defaults.js';
import { BadRequestError, NotFoundError, ValidationError } from '../errors.js';
import type { EventListener, TokenChangedEvent } from '../events.js';
import {
  any,
  fail,
  func,
  integer,
  object,
  type Shape,
  validateOptions,
  withMethods,
} from '../internal/options.js';
import { storeCall } from '../internal/with-timeout.js';
import type { RateLimit, Scope, TokenChanges, TokenInfo, TokenOrigin, TokenRecord } from '../model.js';
import { type CountLimit, type TokenQuery, type TokenStore, userGroup } from '../stores/token-store.js';
import { parseInstant, validateName, validateScope, validateUser } from '../validate.js';
import {
  checkExpiryPolicy,
  EXPIRY_POLICY,
  type ExpiryPolicy,
  expiryFor,
  renewedExpiry,
} from './expiry-policy.js';
import { generateToken, isTokenId } from './format.js';
import type { TokenHasher } from './hashers.js';
import { type RestrictionsInput, rateLimitProblem, validateRestrictions } from './restrictions.js';
import { REVOKED_ALL_KEEP_MS, revokedAllKey } from './revoked-all.js';
import { checkSeal, type SealFunction, type SealState, sealOf } from './seal.js';
import { toTokenInfo } from './token-info.js';
import { isTombstone } from './tombstone.js';
import type { UpstreamCredentials, UpstreamGrant, UpstreamHook } from './upstream-hook.js';
import { type CacheOptions, sealFunctionOf, TokenVerifier } from './verifier.js';

export type { ExpiryPolicy } from './expiry-policy.js';

/**
 * Options of `new TokenService(…)`, for using tokens without a gate (a CLI, a job). A gate
 * builds its own from its options: use `gate.tokens` there.
 * @example
 * const tokens = new TokenService({
 *   store: new SqliteTokenStore({ path: './data/tokens.db' }),
 *   hasher: sha256Hasher({ pepper: process.env.TOKEN_PEPPER! }),
 *   expiry: { maxDays: 365 },
 * });
 * const { token } = await tokens.create({ user: 'ci-bot', name: 'nightly', scope: 'read' });
 */
export interface TokenServiceOptions {
  /** Where tokens live. */
  store: TokenStore;
  /** How secrets are hashed: `sha256Hasher(…)`, `bcryptHasher(…)` or your own. */
  hasher: TokenHasher;
  /** Prefix of token strings. Default `'bbt'`. */
  tokenPrefix?: string;
  /** Token lifetimes. Default: no expiry unless a token asks for one. */
  expiry?: ExpiryPolicy;
  /** Verified-token cache. Default: 10,000 entries for 5 s. */
  cache?: CacheOptions;
  /** Deadline for every store call; past it the call fails closed with 503. Default 2,000 ms. */
  storeTimeoutMs?: number;
  /** Least time between two last-used writes of one token. Default 60,000 ms. */
  touchIntervalMs?: number;
  /** Concurrent checks for slow hashers (bcrypt). Default 4; 256 more may wait. */
  maxConcurrentSlowChecks?: number;
  /** Most live tokens one user may hold; creating more is a 400 `TOKEN_LIMIT_REACHED`. Default 100. */
  maxTokensPerUser?: number;
  /** Receives `token.*` events. Default: none. */
  onEvent?: EventListener;
  /**
   * Backs each token with an upstream credential (access-token mode). `createTokenGate` sets it
   * from its `upstream` option (`bitbucketAccessTokens(...)`).
   */
  upstream?: UpstreamHook;
  /**
   * The most generous `rateLimit` a token may be given (`createTokenGate` sets it from
   * `rateLimit.maxPerToken`, else `rateLimit.perToken`). Default: none.
   */
  maxRateLimit?: RateLimit;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * A new token: its owner, name, scope, and optional expiry and restrictions.
 * @example
 * const input: CreateTokenInput = {
 *   user: 'ci-bot',
 *   name: 'deploys',
 *   scope: 'write',
 *   expiresAt: '2027-06-30T00:00:00Z',
 *   resources: ['OPS/deploy'],
 * };
 * const { token } = await gate.tokens.create(input, { actor: 'admin' });
 */
export interface CreateTokenInput extends RestrictionsInput {
  /** The owner: the Bitbucket user the token acts as. */
  user: string;
  /** 1 to 100 characters, no control characters. */
  name: string;
  /** `read` or `write`. */
  scope: Scope;
  /** A `Date` or an ISO 8601 string; default from the expiry policy. */
  expiresAt?: Date | string | null;
  /** Who creates it, when not the owner (an administrator). Default: the context's actor, else `user`. */
  createdBy?: string;
  /**
   * Access-token mode: the owner's Bitbucket password (a Bitbucket access token is minted with
   * it, and it is forgotten) or a Bitbucket access token of theirs to link. Required there
   * (see `upstreamCredentialsRequired`); refused otherwise.
   */
  upstream?: UpstreamCredentials;
  /** How it is issued, when not by hand (`gate.oauth()`, federation). Default null. */
  origin?: TokenOrigin | null;
}

/**
 * What `update()` may change: the name and the restrictions (null removes one).
 * @example
 * const changes: TokenUpdate = { name: 'deploys (prod)', requiredHeaders: { 'X-CI-Runner': 'build-7' } };
 * await gate.tokens.update(id, changes, { actor: 'alice' });
 */
export interface TokenUpdate extends RestrictionsInput {
  /** A new name: 1 to 100 characters, no control characters. */
  name?: string;
}

/**
 * Who makes a change, for the audit events.
 * @example
 * const context: ChangeContext = { actor: 'admin', clientIp: req.auth?.clientIp ?? null };
 * await gate.tokens.revokeAll({ user: 'leaver' }, context);
 */
export interface ChangeContext {
  /** The acting user (owner or administrator). Default: the token's owner. */
  actor?: string;
  /** The address the change came from. */
  clientIp?: string | null;
}

/**
 * What `identify()` tells of a token string.
 * @example
 * const identity: TokenIdentity = await gate.tokens.identify(token);
 * if (identity.status === 'live') console.log(`${identity.info.user}'s "${identity.info.name}"`);
 */
export type TokenIdentity =
  | { status: 'live' | 'expired' | 'revoked'; info: TokenInfo }
  | { status: 'unknown'; info?: undefined };

/**
 * Options of `rotate()`.
 * @example
 * const options: RotateOptions = { graceMs: 3_600_000 }; // the old token works one more hour
 * const { token } = await gate.tokens.rotate(id, options, { actor: 'alice' });
 */
export interface RotateOptions {
  /** How long the old token keeps working. Default 86,400,000 ms (24 hours); 0 revokes it at once. */
  graceMs?: number;
  /**
   * Access-token mode: credentials for a fresh Bitbucket access token. Without them the new
   * token shares the old one's Bitbucket token, and does not outlive it.
   */
  upstream?: UpstreamCredentials;
}

/**
 * Options of `copy()`.
 * @example
 * const options: CopyOptions = { upstream: { password } }; // mint a fresh Bitbucket token for the copy
 * const { token } = await gate.tokens.copy(id, options, { actor: 'alice' });
 */
export interface CopyOptions {
  /** Access-token mode: as for `rotate`. Without them the copy shares the original's Bitbucket token. */
  upstream?: UpstreamCredentials;
}

/**
 * One page of `search()`, newest first.
 * @example
 * const page: TokenPage = await gate.tokens.search({ user: 'alice', start: 0, limit: 25 });
 * if (!page.isLastPage) console.log(`next page starts at ${page.nextStart}`);
 */
export interface TokenPage {
  /** The matching tokens (may be fewer than `limit` even when more follow). */
  values: TokenInfo[];
  /** True when nothing follows. */
  isLastPage: boolean;
  /** Where the next page starts (`start` of the next query), when one follows. */
  nextStart?: number;
}

/**
 * A created token: `token` is the only copy of the secret — show it once.
 * @example
 * const created: CreatedToken = await gate.tokens.create({ user: 'alice', name: 'laptop', scope: 'read' });
 * console.log(`Token for ${created.info.user} (shown once): ${created.token}`);
 */
export interface CreatedToken {
  /** The token string (`bbt_…`): the only copy of the secret. */
  token: string;
  /** Its public view. */
  info: TokenInfo;
}

const DEFAULT_GRACE_MS = 86_400_000;

const TOKEN_SERVICE_OPTIONS: Shape<TokenServiceOptions> = {
  store: withMethods(['put', 'get', 'listByUser', 'update', 'delete', 'touch', 'search'], 'a TokenStore'),
  hasher: withMethods(['hash', 'verify'], 'a TokenHasher'),
  tokenPrefix: any,
  expiry: object(EXPIRY_POLICY),
  cache: any,
  storeTimeoutMs: integer(1, 60_000),
  touchIntervalMs: integer(1),
  maxConcurrentSlowChecks: integer(1, 1_000),
  maxTokensPerUser: integer(1, 100_000),
  onEvent: func,
  upstream: withMethods(['acquire', 'release'], 'an UpstreamHook'),
  maxRateLimit: (value, path) => {
    const problem = rateLimitProblem(value);
    if (problem !== undefined) fail(path, problem);
  },
  now: func,
};
/** A token's origin as given to `create`: checked, copied, null when absent. */
function validateOrigin(origin: unknown): TokenOrigin | null {
  if (origin === undefined || origin === null) return null;
  const { via, client, ip } = origin as Partial<TokenOrigin>;
  if (
    (via !== 'oauth' && via !== 'federation') ||
    typeof client !== 'string' ||
    !/^[\x21-\x7e]{1,100}$/.test(client) ||
    (ip !== null && (typeof ip !== 'string' || ip.length > 64))
  )
    throw new ValidationError('origin', '`origin` must be { via: "oauth" | "federation", client, ip }.');
  return { via, client, ip: ip ?? null };
}

const UPDATE_FIELDS = new Set(['name', 'allowedIps', 'requiredHeaders', 'resources', 'rateLimit']);

const engines = new WeakMap<TokenService, TokenVerifier>();
const groupCreators = new WeakMap<
  TokenService,
  (input: CreateTokenInput, limit: CountLimit, context: ChangeContext) => Promise<CreatedToken>
>();

/** Counting groups other than users' are named freely but never `user:…`, which the per-user cap owns. */
const GROUP_NAME = /^(?!user:)\P{Cc}{1,300}$/u;

/**
 * Creates a token counted in its own counting group instead of against its owner's cap (internal,
 * for token issuers such as the federation exchange: "at most N live tokens per trust rule").
 * Atomic in the store: the group never holds more than `limit.max` live tokens, on any instance;
 * a full group is a 400 `TOKEN_LIMIT_REACHED`. Emits `token.created` like `create`.
 */
export function createInGroup(
  service: TokenService,
  input: CreateTokenInput,
  limit: CountLimit,
  context: ChangeContext = {},
): Promise<CreatedToken> {
  const create = groupCreators.get(service);
  if (create === undefined) throw new TypeError('`service` must be a TokenService (gate.tokens)');
  if (typeof limit?.group !== 'string' || !GROUP_NAME.test(limit.group))
    throw new TypeError('`limit.group` must be 1 to 300 characters, no control characters, not `user:…`');
  if (!Number.isInteger(limit.max) || limit.max < 1 || limit.max > 1_000_000)
    throw new TypeError('`limit.max` must be an integer from 1 to 1,000,000');
  return create(input, { group: limit.group, max: limit.max }, context);
}

/** The verification engine of a service, for the request path (internal; not exported by the package). */
export function verifierOf(service: TokenService): TokenVerifier {
  const engine = engines.get(service);
  if (engine === undefined) throw new TypeError('`tokens` must be a TokenService (gate.tokens)');
  return engine;
}

/**
 * Creates, verifies, lists, changes, rotates and revokes tokens. Reached as `gate.tokens`.
 * Every change is reported to `onEvent` (`token.created`, `token.updated`, `token.rotated`,
 * `token.revoked`), never with the secret.
 * @example
 * const { token, info } = await gate.tokens.create({ user: 'alice', name: 'CI', scope: 'read' });
 * await gate.tokens.revoke(info.id, { actor: 'alice' });
 */
export class TokenService {
  /** Prefix of this service's token strings (`bbt` → `bbt_…`). */
  readonly tokenPrefix: string;
  /**
   * True in access-token mode: `create` needs the owner's Bitbucket password or a Bitbucket
   * access token of theirs (`upstream`). Token pages use it to ask for one.
   */
  readonly upstreamCredentialsRequired: boolean;
  readonly #store: TokenStore;
  readonly #hasher: TokenHasher;
  readonly #verifier: TokenVerifier;
  readonly #expiry: ExpiryPolicy;
  readonly #timeoutMs: number;
  readonly #maxPerUser: number;
  readonly #emit: EventListener;
  readonly #upstream: UpstreamHook | undefined;
  readonly #now: () => number;
  readonly #maxRateLimit: RateLimit | undefined;
  readonly #seal: SealFunction;

  constructor(options: TokenServiceOptions) {
    validateOptions<TokenServiceOptions>(options, TOKEN_SERVICE_OPTIONS);
    checkExpiryPolicy(options.expiry ?? {});
    this.tokenPrefix = options.tokenPrefix ?? DEFAULT_TOKEN_PREFIX;
    this.#store = options.store;
    this.#hasher = options.hasher;
    this.#expiry = options.expiry ?? {};
    this.#timeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
    this.#maxPerUser = options.maxTokensPerUser ?? 100;
    this.#emit = options.onEvent ?? (() => {});
    this.#upstream = options.upstream;
    this.upstreamCredentialsRequired = options.upstream !== undefined;
    this.#now = options.now ?? Date.now;
    this.#maxRateLimit = options.maxRateLimit;
    this.#seal = sealFunctionOf(options.hasher);
    this.#verifier = new TokenVerifier({
      ...options,
      tokenPrefix: this.tokenPrefix,
      onTampered: (record, state) => this.#tampered(record, state),
    });
    engines.set(this, this.#verifier);
    groupCreators.set(this, (input, limit, context) => this.#create(input, context, limit));
  }

  /**
   * Creates a token. The returned `token` string is the only copy of the secret: show it once.
   * @example
   * const { token } = await gate.tokens.create({
   *   user: 'ci-bot',
   *   name: 'deploys',
   *   scope: 'write',
   *   resources: ['OPS/deploy'],
   * });
   */
  create(input: CreateTokenInput, context: ChangeContext = {}): Promise<CreatedToken> {
    return this.#create(input, context, undefined);
  }

  /** `create`, counted in `group` (default: the owner's, under `maxTokensPerUser`). */
  async #create(
    input: CreateTokenInput,
    context: ChangeContext,
    group: CountLimit | undefined,
  ): Promise<CreatedToken> {
    if (typeof input !== 'object' || input === null)
      throw new ValidationError('input', 'A token needs a user, a name and a scope.');
    const user = validateUser(input.user);
    const now = this.#now();
    const restrictions = validateRestrictions(input, this.#maxRateLimit);
    const createdBy = validateUser(input.createdBy ?? context.actor ?? user, 'createdBy');
    const created = await this.#issue(
      {
        user,
        name: validateName(input.name),
        scope: validateScope(input.scope),
        createdAt: now,
        createdBy,
        expiresAt: expiryFor(this.#expiry, parseInstant(input.expiresAt, 'expiresAt'), now),
        allowedIps: restrictions.allowedIps ?? null,
        requiredHeaders: restrictions.requiredHeaders ?? null,
        resources: restrictions.resources ?? null,
        origin: validateOrigin(input.origin),
        rateLimit: restrictions.rateLimit ?? null,
      },
      group ?? this.#userLimit(user),
      { credentials: input.upstream, actor: createdBy },
    );
    this.#report(
      'token.created',
      created.info,
      { ...context, actor: createdBy },
      { scope: created.info.scope, ...created.upstream },
    );
    return { token: created.token, info: created.info };
  }

  /** The owner's counting group under `maxTokensPerUser`, with `extra` more allowed for a moment. */
  #userLimit(user: string, extra = 0): CountLimit {
    return { group: userGroup(user), max: this.#maxPerUser + extra };
  }

  /**
   * Writes a new token like `draft` with a fresh id and secret, counted in `limit`'s group
   * atomically in the store (no list per create). In access-token mode the upstream credential
   * is obtained first (and undone when the token cannot be stored), and the token never
   * outlives it.
   */
  async #issue(
    draft: Omit<TokenRecord, 'id' | 'hash' | 'lastUsedAt' | 'lastUsedIp' | 'upstream'>,
    limit: CountLimit,
    upstream: { credentials: UpstreamCredentials | undefined; actor: string; from?: TokenRecord },
  ): Promise<
    CreatedToken & { upstream: { upstream?: UpstreamGrant['origin'] }; undoUpstream: () => Promise<void> }
  > {
    if (upstream.credentials !== undefined && this.#upstream === undefined)
      throw new ValidationError(
        'upstream',
        'Bitbucket credentials are only taken when the gate forwards Bitbucket access tokens (`upstream: bitbucketAccessTokens(...)`).',
      );
    const putCounted = this.#store.putCounted?.bind(this.#store);
    // A store without the counted write: the cap is checked by listing, a best effort only.
    if (putCounted === undefined && limit.group === userGroup(draft.user)) {
      const held = await this.#call(() => this.#store.listByUser(draft.user));
      if (held.length >= limit.max) throw limitReached(draft.user, limit, this.#maxPerUser);
    }
    const { token, id, secret } = generateToken(this.tokenPrefix);
    // Hashed before an upstream credential exists, so nothing after it but the store can fail.
    const hash = await this.#hasher.hash(id + secret);
    const grant = await this.#upstream?.acquire({
      id,
      user: draft.user,
      scope: draft.scope,
      expiresAt: draft.expiresAt,
      actor: upstream.actor,
      credentials: upstream.credentials,
      ...(upstream.from === undefined ? {} : { from: upstream.from }),
      now: this.#now(),
    });
    const notAfter = grant?.notAfter ?? null;
    const unsealed: TokenRecord = {
      ...draft,
      expiresAt:
        notAfter !== null && (draft.expiresAt === null || draft.expiresAt > notAfter)
          ? notAfter
          : draft.expiresAt,
      id,
      hash,
      lastUsedAt: null,
      lastUsedIp: null,
      upstream: grant?.sealed ?? null,
    };
    const record: TokenRecord = { ...unsealed, seal: sealOf(unsealed, this.#seal) };
    let stored = true;
    try {
      if (putCounted === undefined) await this.#call(() => this.#store.put(record));
      else stored = await this.#call(() => putCounted(record, limit));
    } catch (err) {
      // No half-made token: the upstream credential minted for it goes too.
      await grant?.undo().catch(() => {});
      throw err;
    }
    if (!stored) {
      await grant?.undo().catch(() => {});
      throw limitReached(draft.user, limit, this.#maxPerUser);
    }
    return {
      token,
      info: toTokenInfo(record),
      upstream: grant === undefined ? {} : { upstream: grant.origin },
      undoUpstream: async () => grant?.undo(),
    };
  }

  /**
   * The token's info when it is valid now, else null. Rejects with a StoreError when the store fails.
   * @example const info = await gate.tokens.verify(req.headers['x-token'] as string);
   */
  async verify(token: string): Promise<TokenInfo | null> {
    const outcome = await this.#verifier.check(token);
    return outcome.ok ? outcome.info : null;
  }

  /**
   * One token's info, or null for an unknown (or malformed) id.
   * @example const info = await gate.tokens.get('a1B2c3D4e5F');
   */
  async get(id: string): Promise<TokenInfo | null> {
    const record = await this.#live(id);
    return record === null ? null : toTokenInfo(record);
  }

  async #live(id: string): Promise<TokenRecord | null> {
    if (!isTokenId(id)) return null;
    const record = await this.#call(() => this.#store.get(id));
    return record === null || this.#expired(record) ? null : record;
  }

  /**
   * A user's live tokens, newest first. User names match case-insensitively.
   * @example const mine = await gate.tokens.list('alice');
   */
  async list(user: string): Promise<TokenInfo[]> {
    validateUser(user);
    const records = await this.#call(() => this.#store.listByUser(user));
    return records.filter((r) => !this.#expired(r)).map(toTokenInfo);
  }

  /**
   * The token manager: every user's tokens, filtered, newest first.
   * @example
   * const page = await gate.tokens.search({ scope: 'write', restricted: false, start: 0, limit: 25 });
   */
  async search(query: TokenQuery): Promise<TokenPage> {
    if (query?.user !== undefined) validateUser(query.user);
    const page = await this.#call(() => this.#store.search(query));
    const values = page.values.filter((r) => !this.#expired(r)).map(toTokenInfo);
    return page.nextStart === undefined
      ? { values, isLastPage: page.isLastPage }
      : { values, isLastPage: page.isLastPage, nextStart: page.nextStart };
  }

  /**
   * Changes a token's name or restrictions (null removes a restriction); null when the id is
   * unknown. The scope and the expiry cannot be changed: rotate instead.
   * @example await gate.tokens.update(id, { allowedIps: ['10.0.0.0/8'], resources: ['PROJ/repo'] });
   */
  async update(id: string, changes: TokenUpdate, context: ChangeContext = {}): Promise<TokenInfo | null> {
    if (typeof changes !== 'object' || changes === null)
      throw new ValidationError('changes', 'Give the fields to change.');
    for (const key of Object.keys(changes))
      if (!UPDATE_FIELDS.has(key)) throw new ValidationError(key, `\`${key}\` cannot be changed.`);
    const valid = {
      ...(changes.name === undefined ? {} : { name: validateName(changes.name) }),
      ...validateRestrictions(changes, this.#maxRateLimit),
    };
    if (!isTokenId(id)) return null;
    const updated = await this.#resealed(id, valid);
    this.#verifier.forget(id);
    if (!updated) return null;
    const info = await this.get(id);
    if (info !== null) this.#report('token.updated', info, context, { fields: Object.keys(valid) });
    return info;
  }

  /**
   * Revokes a token at once, here and (through the store's feed) on every instance. Idempotent:
   * false when there was no such token.
   * @example await gate.tokens.revoke(info.id, { actor: 'admin' });
   */
  async revoke(id: string, context: ChangeContext = {}): Promise<boolean> {
    const revoked = await this.#revokeOne(id, context);
    if (revoked !== null) await this.#release(revoked);
    return revoked !== null;
  }

  /** Revokes in the store (at once, everywhere); the record when there was a live token. */
  async #revokeOne(id: string, context: ChangeContext): Promise<TokenRecord | null> {
    if (!isTokenId(id)) return null;
    const record = await this.#call(() => this.#store.get(id));
    const existed = await this.#call(() => this.#store.delete(id));
    this.#verifier.forget(id);
    if (!existed || record === null) return null;
    this.#report('token.revoked', toTokenInfo(record), context);
    return record;
  }

  /** Access-token mode: deletes the revoked token's upstream credential (retried in the background). */
  async #release(record: TokenRecord): Promise<void> {
    if (record.upstream !== null) await this.#upstream?.release(record);
  }

  /**
   * Revokes every token of a user (offboarding), on every instance within a second; answers
   * how many were revoked.
   * @example const count = await gate.tokens.revokeAll({ user: 'leaver' }, { actor: 'admin' });
   */
  async revokeAll(target: { user: string }, context: ChangeContext = {}): Promise<number> {
    const user = validateUser(target?.user);
    // First the mark that ends refresh tokens issued until now (gate.oauth()): a store that
    // cannot write it fails the call before any token is touched.
    const store = this.#store;
    if (store.putValue !== undefined)
      await this.#call(() => store.putValue!(revokedAllKey(user), String(this.#now()), REVOKED_ALL_KEEP_MS));
    const revoked: TokenRecord[] = [];
    // Tokens created while we revoke are caught by a second pass.
    for (let pass = 0; pass < 2; pass++) {
      const records = await this.#call(() => this.#store.listByUser(user));
      if (records.length === 0) break;
      for (const record of records) {
        const gone = await this.#revokeOne(record.id, context);
        if (gone !== null) revoked.push(gone);
      }
    }
    // Upstream credentials go after every token is refused, so a slow upstream never delays that.
    await Promise.all(revoked.map((record) => this.#release(record)));
    return revoked.length;
  }

  /**
   * Replaces a token by a new one with the same name, scope and restrictions and a fresh expiry
   * within policy; the old one keeps working for `graceMs` (default 24 hours) so deployments
   * can switch without downtime.
   * @example const { token } = await gate.tokens.rotate(id, { graceMs: 3_600_000 });
   */
  async rotate(id: string, options: RotateOptions = {}, context: ChangeContext = {}): Promise<CreatedToken> {
    const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    if (!Number.isInteger(graceMs) || graceMs < 0 || graceMs > 365 * DEFAULT_GRACE_MS)
      throw new ValidationError(
        'graceMs',
        '`graceMs` must be a whole number of milliseconds from 0 to a year.',
      );
    const old = await this.#existing(id);
    const now = this.#now();
    // With a grace period both tokens live, so the new one counts like any other. Without one
    // it replaces the old: one over the cap for a moment, and undone below unless this call is
    // the one that revoked the old token (two concurrent rotations make one token, not two).
    const created = await this.#issue(
      this.#likeDraft(old, now, context),
      this.#userLimit(old.user, graceMs === 0 ? 1 : 0),
      { credentials: options.upstream, actor: context.actor ?? old.user, from: old },
    );
    const until = graceMs === 0 ? null : Math.min(old.expiresAt ?? Number.POSITIVE_INFINITY, now + graceMs);
    if (until === null) {
      if (!(await this.revoke(old.id, context))) {
        await this.#call(() => this.#store.delete(created.info.id));
        this.#verifier.forget(created.info.id);
        await created.undoUpstream().catch(() => {});
        throw new NotFoundError();
      }
    } else {
      await this.#resealed(old.id, { expiresAt: until });
      this.#verifier.forget(old.id);
    }
    this.#report('token.created', created.info, context, {
      scope: created.info.scope,
      rotatedFrom: old.id,
      ...created.upstream,
    });
    this.#emit({
      ...this.#base(toTokenInfo(old), context),
      type: 'token.rotated',
      replacedBy: created.info.id,
      expiresAt: until === null ? new Date(now).toISOString() : new Date(until).toISOString(),
    });
    return { token: created.token, info: created.info };
  }

  /**
   * Creates another token like this one: a new secret, the same name, scope and restrictions,
   * a fresh expiry within policy.
   * @example const { token } = await gate.tokens.copy(id);
   */
  async copy(id: string, options: CopyOptions = {}, context: ChangeContext = {}): Promise<CreatedToken> {
    const original = await this.#existing(id);
    const created = await this.#issue(
      this.#likeDraft(original, this.#now(), context),
      this.#userLimit(original.user),
      {
        credentials: options.upstream,
        actor: context.actor ?? original.user,
        from: original,
      },
    );
    this.#report('token.created', created.info, context, {
      scope: created.info.scope,
      copiedFrom: original.id,
      ...created.upstream,
    });
    return { token: created.token, info: created.info };
  }

  /**
   * Whose a token string is, for an administrator who was handed one: `live` (it works now),
   * `expired`, `revoked` (only while a tombstone remains: revoked tokens are deleted, and are
   * then `unknown`), or `unknown` (never issued here, revoked, or a wrong secret). The info is
   * given only when the secret matched (or for a tombstone); never a hash.
   * @example const { status, info } = await gate.tokens.identify(pastedToken);
   */
  async identify(token: string): Promise<TokenIdentity> {
    const outcome = await this.#verifier.check(token);
    if (outcome.ok) return { status: 'live', info: outcome.info };
    if (outcome.reason !== 'expired' && outcome.reason !== 'mismatch') return { status: 'unknown' };
    const record = await this.#call(() => this.#store.get(outcome.id!));
    if (record === null) return { status: 'unknown' };
    if (isTombstone(record)) return { status: 'revoked', info: toTokenInfo(record) };
    return outcome.reason === 'expired'
      ? { status: 'expired', info: toTokenInfo(record) }
      : { status: 'unknown' };
  }

  /** A live token to copy or rotate: never one whose record was changed in the store (that would launder the change). */
  async #existing(id: string): Promise<TokenRecord> {
    const record = await this.#live(id);
    if (record === null || !this.#intact(record)) throw new NotFoundError();
    return record;
  }

  /** True when the record's seal holds; otherwise reports `token.tampered`. */
  #intact(record: TokenRecord): boolean {
    const state = checkSeal(record, this.#seal);
    if (state === 'intact') return true;
    this.#tampered(record, state);
    return false;
  }

  #tampered(record: TokenRecord, state: Exclude<SealState, 'intact'>): void {
    this.#emit({
      type: 'token.tampered',
      time: new Date(this.#now()).toISOString(),
      clientIp: null,
      tokenId: record.id,
      user: record.user,
      reason: state,
    });
  }

  /**
   * Changes a live token and seals the result. Changes to unsealed fields (the name) need no
   * new seal; sealed ones are applied only to a record whose seal holds, so a change made
   * outside the library is never sealed by a legitimate one. False when the token is gone (or
   * its record was tampered with). A concurrent change to another sealed field breaks the seal
   * (the token then fails closed) rather than carrying a stale one.
   */
  async #resealed(id: string, changes: TokenChanges): Promise<boolean> {
    const sealed = Object.keys(changes).some((key) => key !== 'name');
    if (!sealed) return this.#call(() => this.#store.update(id, changes));
    const current = await this.#call(() => this.#store.get(id));
    if (current === null || this.#expired(current) || !this.#intact(current)) return false;
    const { seal: _old, ...next } = { ...current, ...definedOnly(changes) };
    return this.#call(() => this.#store.update(id, { ...changes, seal: sealOf(next, this.#seal) }));
  }

  /**
   * Seals every live record that has none: records written before 0.3.0, which verification
   * refuses until sealed (`token.tampered`, reason `unsealed`). Run it once, right after the
   * upgrade, from a trusted place with the gate's pepper (`express-api-tokens seal` does): it
   * seals records as they are, so anything changed in the store before it runs is sealed too.
   * Records whose seal is broken are left alone and counted.
   * @example
   * const { sealed } = await gate.tokens.sealUnsealed();
   * console.log(`sealed ${sealed} tokens from 0.2.0`);
   */
  async sealUnsealed(): Promise<{ sealed: number; intact: number; broken: number }> {
    const counts = { sealed: 0, intact: 0, broken: 0 };
    let start: number | undefined = 0;
    while (start !== undefined) {
      const page = await this.#call(() => this.#store.search({ start: start!, limit: 500 }));
      for (const record of page.values) {
        const state = checkSeal(record, this.#seal);
        if (state === 'intact') counts.intact++;
        else if (state === 'broken') counts.broken++;
        else if (await this.#call(() => this.#store.update(record.id, { seal: sealOf(record, this.#seal) })))
          counts.sealed++;
      }
      start = page.isLastPage ? undefined : page.nextStart;
    }
    return counts;
  }

  #likeDraft(original: TokenRecord, now: number, context: ChangeContext) {
    return {
      user: original.user,
      name: original.name,
      scope: original.scope,
      createdAt: now,
      createdBy: context.actor ?? original.user,
      expiresAt: renewedExpiry(this.#expiry, original, now),
      allowedIps: original.allowedIps,
      requiredHeaders: original.requiredHeaders,
      resources: original.resources,
      rateLimit: original.rateLimit ?? null,
    };
  }

  #expired(record: TokenRecord): boolean {
    return record.expiresAt !== null && record.expiresAt <= this.#now();
  }

  #call<T>(work: () => Promise<T>): Promise<T> {
    return storeCall(work, this.#timeoutMs);
  }

  #base(info: TokenInfo, context: ChangeContext) {
    return {
      time: new Date(this.#now()).toISOString(),
      clientIp: context.clientIp ?? null,
      actor: context.actor ?? info.user,
      user: info.user,
      tokenId: info.id,
      name: info.name,
    };
  }

  #report(
    type: 'token.created' | 'token.updated' | 'token.revoked',
    info: TokenInfo,
    context: ChangeContext,
    extra: Partial<
      Pick<TokenChangedEvent, 'scope' | 'fields' | 'rotatedFrom' | 'copiedFrom' | 'upstream'>
    > = {},
  ): void {
    this.#emit({ ...this.#base(info, context), type, ...extra });
  }
}

function limitReached(user: string, limit: CountLimit, maxPerUser: number): BadRequestError {
  return new BadRequestError(
    'TOKEN_LIMIT_REACHED',
    limit.group === userGroup(user)
      ? `${user} already has ${maxPerUser} API tokens, the most allowed. Revoke one first.`
      : `The most live tokens allowed for ${limit.group} (${limit.max}) are in use. Try again when one expires.`,
  );
}

/** The fields of a change that are set (undefined means "leave alone"). */
function definedOnly(changes: TokenChanges): TokenChanges {
  return Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
}
