import { BadRequestError, NotFoundError, ValidationError } from '../errors.js';
import type { EventListener, TokenChangedEvent } from '../events.js';
import { any, func, integer, object, type Shape, validateOptions, withMethods } from '../internal/options.js';
import { parseInstant, validateName, validateScope, validateUser } from '../internal/validate.js';
import { storeCall } from '../internal/with-timeout.js';
import type { Scope, TokenInfo, TokenRecord } from '../model.js';
import type { TokenQuery, TokenStore } from '../stores/token-store.js';
import {
  checkExpiryPolicy,
  EXPIRY_POLICY,
  type ExpiryPolicy,
  expiryFor,
  renewedExpiry,
} from './expiry-policy.js';
import { generateToken, isTokenId } from './format.js';
import type { TokenHasher } from './hashers.js';
import { type RestrictionsInput, validateRestrictions } from './restrictions.js';
import { toTokenInfo } from './token-info.js';
import { isTombstone } from './tombstone.js';
import type { UpstreamCredentials, UpstreamGrant, UpstreamHook } from './upstream-hook.js';
import { type CacheOptions, TokenVerifier } from './verifier.js';

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
  now: func,
};
const UPDATE_FIELDS = new Set(['name', 'allowedIps', 'requiredHeaders', 'resources']);

const engines = new WeakMap<TokenService, TokenVerifier>();

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

  constructor(options: TokenServiceOptions) {
    validateOptions<TokenServiceOptions>(options, TOKEN_SERVICE_OPTIONS);
    checkExpiryPolicy(options.expiry ?? {});
    this.tokenPrefix = options.tokenPrefix ?? 'bbt';
    this.#store = options.store;
    this.#hasher = options.hasher;
    this.#expiry = options.expiry ?? {};
    this.#timeoutMs = options.storeTimeoutMs ?? 2_000;
    this.#maxPerUser = options.maxTokensPerUser ?? 100;
    this.#emit = options.onEvent ?? (() => {});
    this.#upstream = options.upstream;
    this.upstreamCredentialsRequired = options.upstream !== undefined;
    this.#now = options.now ?? Date.now;
    this.#verifier = new TokenVerifier({ ...options, tokenPrefix: this.tokenPrefix });
    engines.set(this, this.#verifier);
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
  async create(input: CreateTokenInput, context: ChangeContext = {}): Promise<CreatedToken> {
    if (typeof input !== 'object' || input === null)
      throw new ValidationError('input', 'A token needs a user, a name and a scope.');
    const user = validateUser(input.user);
    const now = this.#now();
    const restrictions = validateRestrictions(input);
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
      },
      true,
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

  /**
   * Writes a new token like `draft` with a fresh id and secret; checks the per-user cap when
   * asked. In access-token mode the upstream credential is obtained first (and undone when the
   * token cannot be stored), and the token never outlives it.
   */
  async #issue(
    draft: Omit<TokenRecord, 'id' | 'hash' | 'lastUsedAt' | 'lastUsedIp' | 'upstream'>,
    capped: boolean,
    upstream: { credentials: UpstreamCredentials | undefined; actor: string; from?: TokenRecord },
  ): Promise<CreatedToken & { upstream: { upstream?: UpstreamGrant['origin'] } }> {
    if (upstream.credentials !== undefined && this.#upstream === undefined)
      throw new ValidationError(
        'upstream',
        'Bitbucket credentials are only taken when the gate forwards Bitbucket access tokens (`upstream: bitbucketAccessTokens(...)`).',
      );
    if (capped) {
      const held = await this.#call(() => this.#store.listByUser(draft.user));
      if (held.length >= this.#maxPerUser)
        throw new BadRequestError(
          'TOKEN_LIMIT_REACHED',
          `${draft.user} already has ${held.length} API tokens, the most allowed. Revoke one first.`,
        );
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
    const record: TokenRecord = {
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
    try {
      await this.#call(() => this.#store.put(record));
    } catch (err) {
      // No half-made token: the upstream credential minted for it goes too.
      await grant?.undo().catch(() => {});
      throw err;
    }
    return {
      token,
      info: toTokenInfo(record),
      upstream: grant === undefined ? {} : { upstream: grant.origin },
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
      ...validateRestrictions(changes),
    };
    if (!isTokenId(id)) return null;
    const updated = await this.#call(() => this.#store.update(id, valid));
    this.#verifier.forget(id);
    if (!updated) return null;
    const info = await this.get(id);
    if (info !== null) this.#report('token.updated', info, context, { fields: Object.keys(valid) });
    return info;
  }

  /** Renames a token; null when the id is unknown. Same as `update(id, { name })`. */
  rename(id: string, name: string, context: ChangeContext = {}): Promise<TokenInfo | null> {
    return this.update(id, { name }, context);
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
    // A rotation replaces a token, so the per-user cap does not stand in its way.
    const created = await this.#issue(this.#likeDraft(old, now, context), false, {
      credentials: options.upstream,
      actor: context.actor ?? old.user,
      from: old,
    });
    const until = graceMs === 0 ? null : Math.min(old.expiresAt ?? Number.POSITIVE_INFINITY, now + graceMs);
    if (until === null) await this.revoke(old.id, context);
    else {
      await this.#call(() => this.#store.update(old.id, { expiresAt: until }));
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
    const created = await this.#issue(this.#likeDraft(original, this.#now(), context), true, {
      credentials: options.upstream,
      actor: context.actor ?? original.user,
      from: original,
    });
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

  async #existing(id: string): Promise<TokenRecord> {
    const record = await this.#live(id);
    if (record === null) throw new NotFoundError();
    return record;
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
