import {
  type Answer,
  type BitbucketPermission,
  BitbucketTokenApi,
  BitbucketUnavailable,
  basicAuthorization,
  bearerAuthorization,
  bitbucketTokenId,
  missingPermissions,
} from '../bitbucket/token-api.js';
import { AuthenticationError, ConflictError, ForbiddenError, ValidationError } from '../errors.js';
import type { Scope, TokenRecord } from '../model.js';
import type { UpstreamCredentials, UpstreamGrant, UpstreamRequest } from '../tokens/upstream-hook.js';
import { sameUser } from '../validate.js';
import { CredentialBox, type UpstreamCredential } from './credential-box.js';
import { ExpirySweep } from './expiry-sweep.js';
import { upstreamCredentials } from './upstream-credentials.js';
import { UpstreamDeletions } from './upstream-deletions.js';
import {
  type AccessTokenConfig,
  type AttachContext,
  type AttachedUpstream,
  MINTED_TOKEN_NAME,
} from './upstream-mode.js';

const DAY_MS = 86_400_000;

/**
 * Access-token mode attached to a gate's store and listener: the Bitbucket tokens behind ours
 * (minted, linked or shared), their deletion and expiry sweep, and the request step that sends
 * them upstream. Imported by `attachUpstream` when a gate or the command line uses the mode.
 */
export function attachAccessTokenMode(config: AccessTokenConfig, context: AttachContext): AttachedUpstream {
  const box = new CredentialBox(config.keyRing);
  const api = new BitbucketTokenApi(config.baseUrl, config.timeoutMs);
  const adminAuthorization =
    config.adminToken === undefined ? undefined : bearerAuthorization(config.adminToken);
  const now = context.now ?? Date.now;
  const deletions = new UpstreamDeletions({
    api,
    box,
    adminAuthorization,
    store: context.store,
    storeTimeoutMs: context.storeTimeoutMs,
    emit: context.emit,
    retry: config.retry,
    now,
  });
  const sweep =
    context.sweep === false ? undefined : new ExpirySweep(context.store, deletions, config.sweepIntervalMs);
  const grants = new Grants(api, box, config.permissions, adminAuthorization, deletions);
  return {
    hook: {
      acquire: (request) => grants.acquire(request),
      release: (record) => deletions.release(record, 'revoked'),
    },
    requestStep: upstreamCredentials({ box, api, onEvent: context.onEvent }),
    close() {
      sweep?.stop();
      deletions.close();
    },
  };
}

function credentialsOf(value: unknown): UpstreamCredentials {
  const fail = (message: string): never => {
    throw new ValidationError('upstream', message);
  };
  if (typeof value !== 'object' || value === null)
    fail('`upstream` must be { password } or { bitbucketToken }.');
  const { password, bitbucketToken, slug, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) fail(`Unknown field \`upstream.${Object.keys(rest)[0]}\`.`);
  if ((password === undefined) === (bitbucketToken === undefined))
    fail('Give either a Bitbucket password or a Bitbucket access token, not both.');
  if (slug !== undefined && (typeof slug !== 'string' || slug.length === 0 || slug.length > 255))
    fail('`upstream.slug` must be a Bitbucket user slug.');
  const withSlug = slug === undefined ? {} : { slug: slug as string };
  if (password !== undefined) {
    if (typeof password !== 'string' || password.length === 0 || password.length > 1024)
      fail('`upstream.password` must be a non-empty string.');
    return { password: password as string, ...withSlug };
  }
  if (typeof bitbucketToken !== 'string' || bitbucketToken.length < 8 || bitbucketToken.length > 1024)
    throw new ValidationError('bitbucketToken', '`bitbucketToken` must be a Bitbucket HTTP access token.');
  return { bitbucketToken, ...withSlug };
}

/** Mints, links or shares the Bitbucket token of a new token. */
class Grants {
  constructor(
    private readonly api: BitbucketTokenApi,
    private readonly box: CredentialBox,
    private readonly permissions: Record<Scope, readonly BitbucketPermission[]>,
    private readonly adminAuthorization: string | undefined,
    private readonly deletions: UpstreamDeletions,
  ) {}

  async acquire(request: UpstreamRequest): Promise<UpstreamGrant> {
    if (request.credentials === undefined) {
      if (request.from?.upstream != null) return this.#share(request, request.from);
      throw new ConflictError(
        sameUser(request.actor, request.user)
          ? 'This proxy forwards Bitbucket access tokens: log in with your Bitbucket password, or give a Bitbucket HTTP access token you created (`bitbucketToken`).'
          : `This proxy forwards Bitbucket access tokens: creating a token for ${request.user} needs a Bitbucket HTTP access token of theirs (\`bitbucketToken\`).`,
      );
    }
    const credentials = credentialsOf(request.credentials);
    return 'password' in credentials
      ? this.#mint(request, credentials.password, credentials.slug)
      : this.#link(request, credentials.bitbucketToken, credentials.slug);
  }

  /** The user's slug: given, or looked up with the user's own credentials. */
  async #slug(user: string, authorization: string, given: string | undefined): Promise<string> {
    if (given !== undefined) return given;
    const found = await this.api.findUser(user, authorization);
    if (found.ok && found.value !== undefined) return found.value.slug;
    if (!found.ok && found.status === 401) throw this.#refusedCredential(authorization);
    throw new ValidationError('user', `Bitbucket has no user named ${user}.`);
  }

  #refusedCredential(authorization: string): Error {
    return authorization.startsWith('Basic ')
      ? new AuthenticationError('PASSWORD_INVALID', 'Bitbucket refused the password.')
      : new ValidationError(
          'bitbucketToken',
          'Bitbucket does not accept this access token (wrong, revoked or expired).',
        );
  }

  async #mint(request: UpstreamRequest, password: string, slug: string | undefined): Promise<UpstreamGrant> {
    const authorization = basicAuthorization(request.user, password);
    const userSlug = await this.#slug(request.user, authorization, slug);
    const name = `${MINTED_TOKEN_NAME} ${request.id}`;
    // Bitbucket counts whole days: round up, so its token never dies before ours; ours is
    // refused by the gate when it expires, and the sweep deletes the Bitbucket token then.
    const expiryDays =
      request.expiresAt === null
        ? undefined
        : Math.max(1, Math.ceil((request.expiresAt - request.now) / DAY_MS));
    let answer: Answer<{ id: string; token: string; expiresAt: number | null }>;
    try {
      answer = await this.api.create(userSlug, authorization, {
        name,
        permissions: this.permissions[request.scope],
        ...(expiryDays === undefined ? {} : { expiryDays }),
      });
    } catch (err) {
      // No answer, but Bitbucket may have created it: find it by its name and delete it.
      if (err instanceof BitbucketUnavailable && err.ambiguous)
        await this.#deleteByName(userSlug, authorization, name);
      throw err instanceof BitbucketUnavailable
        ? new BitbucketUnavailable(
            `Bitbucket could not create the access token behind this API token: ${err.message}`,
            err.ambiguous,
          )
        : err;
    }
    if (!answer.ok) throw this.#mintRefused(answer, request.user);
    const credential: UpstreamCredential = {
      token: answer.value.token,
      tokenId: answer.value.id,
      user: request.user,
      slug: userSlug,
      ours: request.id,
      expiresAt:
        answer.value.expiresAt ?? (expiryDays === undefined ? null : request.now + expiryDays * DAY_MS),
      origin: 'minted',
    };
    const draft = { id: request.id, user: request.user, name } as TokenRecord;
    try {
      const sealed = await this.box.seal(credential);
      return {
        sealed,
        notAfter: credential.expiresAt,
        origin: 'minted',
        undo: () => this.deletions.abandon(draft, credential),
      };
    } catch (err) {
      await this.deletions.abandon(draft, credential);
      throw err;
    }
  }

  #mintRefused(answer: { status: number; message?: string; refusal?: string }, user: string): Error {
    const said = answer.message === undefined ? '' : ` Bitbucket says: ${answer.message}`;
    if (answer.status === 401 && answer.refusal === 'unauthenticated')
      return new AuthenticationError('PASSWORD_INVALID', 'Bitbucket refused the password.');
    if (answer.status === 401 || answer.status === 403)
      return new ForbiddenError(
        'PERMISSION_DENIED',
        `Bitbucket does not let ${user} create HTTP access tokens.${said}`,
      );
    if (answer.status === 404) return new ValidationError('user', `Bitbucket has no user ${user}.`);
    return new ValidationError('upstream', `Bitbucket refused to create the access token.${said}`);
  }

  /** Best effort after an unanswered create: the token may exist under our name. */
  async #deleteByName(slug: string, authorization: string, name: string): Promise<void> {
    try {
      const listed = await this.api.list(slug, authorization);
      if (!listed.ok) return;
      for (const token of listed.value.filter((t) => t.name === name))
        await this.api.delete(slug, token.id, authorization);
    } catch {
      // Bitbucket is still down: the orphan carries our name and expiry for an administrator.
    }
  }

  async #link(request: UpstreamRequest, token: string, slug: string | undefined): Promise<UpstreamGrant> {
    const authorization = bearerAuthorization(token);
    const reject = (message: string) => new ValidationError('bitbucketToken', message);
    const who = await this.api.whoAmI(authorization);
    if (!who.ok) throw this.#refusedCredential(authorization);
    if (who.value === null || !sameUser(who.value, request.user))
      throw reject(`This Bitbucket access token does not belong to ${request.user}.`);
    const tokenId = bitbucketTokenId(token);
    if (tokenId === undefined) throw reject('This is not a Bitbucket personal HTTP access token.');
    const userSlug = await this.#slug(request.user, authorization, slug);
    const read = await this.api.read(userSlug, tokenId, this.adminAuthorization ?? authorization);
    if (!read.ok)
      throw read.status === 404
        ? reject(`Bitbucket knows no such access token of ${request.user}.`)
        : reject(
            'Bitbucket did not let the proxy read this access token’s permissions. Ask an administrator to configure `adminToken`.',
          );
    const details = read.value;
    if (details.user !== null && !sameUser(details.user, request.user))
      throw reject(`This Bitbucket access token does not belong to ${request.user}.`);
    const missing = missingPermissions(details.permissions, this.permissions[request.scope]);
    if (missing.length > 0)
      throw reject(
        `This Bitbucket access token lacks ${missing.join(' and ')}, which ${request.scope} API tokens need.`,
      );
    if (details.expiresAt !== null && details.expiresAt <= request.now)
      throw reject('This Bitbucket access token has expired.');
    const sealed = await this.box.seal({
      token,
      tokenId,
      user: request.user,
      slug: userSlug,
      ours: request.id,
      expiresAt: details.expiresAt,
      origin: 'linked',
    });
    return { sealed, notAfter: details.expiresAt, origin: 'linked', undo: async () => {} };
  }

  /** Rotation and copy without new credentials: the new token shares the original's Bitbucket token. */
  async #share(request: UpstreamRequest, from: TokenRecord): Promise<UpstreamGrant> {
    const original = await this.box.open(from);
    if (original.expiresAt !== null && original.expiresAt <= request.now)
      throw new ConflictError(
        'The Bitbucket access token behind this API token has expired: give your Bitbucket password or a new `bitbucketToken`.',
      );
    const sealed = await this.box.seal({ ...original, ours: request.id });
    return { sealed, notAfter: original.expiresAt, origin: 'shared', undo: async () => {} };
  }
}
