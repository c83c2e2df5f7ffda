import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Scope } from '../model.js';
import { revokedAllKey } from '../tokens/revoked-all.js';
import type { TokenService } from '../tokens/service.js';
import { digest, type FamilyRecord, type Grant, type GrantState, newSecret } from './grant-state.js';
import type { GrantResult } from './grants.js';
import type { OAuthConfig } from './options.js';

/** An OAuth error answer (RFC 6749 §5.2). */
export const oauthError = (
  status: 400 | 401 | 403 | 429 | 503,
  error: string,
  description?: string,
): GrantResult => ({
  status,
  body: { error, ...(description === undefined ? {} : { error_description: description }) },
});

/** What one sign-in issued, remembered so that a replayed code can undo it. */
export interface Issued {
  accessTokenId: string;
  family: string;
}

/** Whether `grant.user` may now be issued a token of `grant.scope` (the gate's permissions, groups resolved afresh). */
export type MayIssue = (grant: Grant) => Promise<boolean>;

const REFRESH = /^[a-z][a-z0-9]{0,15}r_([0-9a-f]{32})\.([A-Za-z0-9_-]{43})$/;

/** The family id and secret of a refresh token string, or null when it is not one of ours. */
export function parseRefreshToken(token: string | null): { family: string; secret: string } | null {
  const match = token === null ? null : REFRESH.exec(token);
  return match === null ? null : { family: match[1]!, secret: match[2]! };
}

const sameDigest = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * Issues what the token endpoint answers: an ordinary API token of the user (through
 * `TokenService`, so the same verification, restrictions, events and per-user cap), and a
 * refresh token whose family lives in the store. Refresh tokens rotate on every use; a reused
 * one ends its family and the family's access token.
 */
export class OAuthIssuer {
  readonly #tokens: TokenService;
  readonly #state: GrantState;
  readonly #config: OAuthConfig;
  readonly #now: () => number;
  readonly #mayIssue: MayIssue | undefined;

  constructor(
    tokens: TokenService,
    state: GrantState,
    config: OAuthConfig,
    now: () => number = Date.now,
    mayIssue?: MayIssue,
  ) {
    this.#tokens = tokens;
    this.#state = state;
    this.#config = config;
    this.#now = now;
    this.#mayIssue = mayIssue;
  }

  /** A new sign-in (code or device grant): an access token and a new refresh family. */
  async issue(grant: Grant, clientIp: string | null): Promise<GrantResult & Partial<Issued>> {
    return this.#mint(grant, clientIp, randomBytes(16).toString('hex'), this.#now());
  }

  /** Ends what one sign-in issued: its access token and its refresh family (a replayed code). */
  async revokeIssued(issued: Issued, clientIp: string | null): Promise<void> {
    const family = await this.#state.take<FamilyRecord>('family', issued.family);
    await this.#tokens.revoke(family?.accessTokenId ?? issued.accessTokenId, { clientIp });
  }

  /** The refresh grant: rotates the family, or ends it when the token was used before. */
  async refresh(
    token: string | null,
    clientId: string,
    scope: Scope | null,
    clientIp: string | null,
  ): Promise<GrantResult & { replayedBy?: string }> {
    const parsed = parseRefreshToken(token);
    const invalid = oauthError(400, 'invalid_grant', 'The refresh token is invalid, expired or revoked.');
    if (parsed === null) return invalid;
    // Taken, not read: two uses of one refresh token can never both rotate it.
    const family = await this.#state.take<FamilyRecord>('family', parsed.family);
    if (family === null) return invalid;
    if (!sameDigest(family.secret, digest(parsed.secret)) || family.client !== clientId) {
      // A refresh token used twice was copied: the family ends, with its access token.
      await this.#tokens.revoke(family.accessTokenId, { actor: family.user, clientIp });
      return {
        ...oauthError(400, 'invalid_grant', 'The refresh token was already used: this sign-in is revoked.'),
        replayedBy: family.user,
      };
    }
    const now = this.#now();
    if (!(await this.#alive(family, now))) {
      await this.#tokens.revoke(family.accessTokenId, { actor: family.user, clientIp });
      return invalid;
    }
    if (scope === 'write' && family.scope === 'read')
      return oauthError(400, 'invalid_scope', 'A refresh cannot widen the scope that was granted.');
    const grant: Grant = { ...family, scope: scope ?? family.scope };
    // A refresh creates a token: the user must still be allowed to (taken out of a group since
    // the consent, they sign in again). A group source that is down keeps the sign-in for later.
    if (this.#mayIssue !== undefined) {
      let allowed: boolean;
      try {
        allowed = await this.#mayIssue(grant);
      } catch (err) {
        await this.#state.put('family', parsed.family, family, this.#keepMs(family, now));
        throw err;
      }
      if (!allowed) {
        await this.#tokens.revoke(family.accessTokenId, { actor: family.user, clientIp });
        return oauthError(
          400,
          'invalid_grant',
          'The user may no longer be issued such a token: sign in again.',
        );
      }
    }
    // The previous access token goes: one live token per sign-in on "My tokens".
    await this.#tokens.revoke(family.accessTokenId, { actor: family.user, clientIp });
    return this.#mint(grant, clientIp, parsed.family, family.signedInAt);
  }

  /** RFC 7009 for refresh tokens: ends the family (and its access token) when the token is current. */
  async revokeRefresh(token: string, clientId: string, clientIp: string | null): Promise<void> {
    const parsed = parseRefreshToken(token);
    if (parsed === null) return;
    const family = await this.#state.get<FamilyRecord>('family', parsed.family);
    if (family === null || family.client !== clientId || !sameDigest(family.secret, digest(parsed.secret)))
      return;
    await this.#state.take('family', parsed.family);
    await this.#tokens.revoke(family.accessTokenId, { actor: family.user, clientIp });
  }

  /**
   * A refresh token found where it should not be (the revocation endpoint for found tokens):
   * when it is the family's current one, the family ends, whichever client it belongs to. Answers
   * the id of the family's access token (for the caller to revoke and report), else null.
   */
  async endLeakedFamily(token: string): Promise<string | null> {
    const parsed = parseRefreshToken(token);
    if (parsed === null) return null;
    const family = await this.#state.get<FamilyRecord>('family', parsed.family);
    if (family === null || !sameDigest(family.secret, digest(parsed.secret))) return null;
    await this.#state.take('family', parsed.family);
    return family.accessTokenId;
  }

  /**
   * A family lives while its user's tokens were not all revoked since the sign-in, and its
   * access token was not revoked before its expiry (revoking it on "My tokens" signs git out).
   */
  async #alive(family: FamilyRecord, now: number): Promise<boolean> {
    if (now - family.signedInAt >= this.#config.refreshMaxMs) return false;
    const revokedAll = Number(await this.#state.raw(revokedAllKey(family.user)));
    if (Number.isFinite(revokedAll) && revokedAll >= family.signedInAt) return false;
    if (now < family.accessExpiresAt && (await this.#tokens.get(family.accessTokenId)) === null) return false;
    return true;
  }

  /** How long a family is kept from `now`: its idle lifetime, within its absolute one. */
  #keepMs(family: FamilyRecord, now: number): number {
    return Math.min(this.#config.refreshIdleMs, family.signedInAt + this.#config.refreshMaxMs - now);
  }

  async #mint(
    grant: Grant,
    clientIp: string | null,
    familyId: string,
    signedInAt: number,
  ): Promise<GrantResult & Issued> {
    const now = this.#now();
    const lifetimeMs = Math.min(grant.lifetimeMs, this.#config.accessTokenTtlMs);
    const client = this.#config.clients.get(grant.client);
    const created = await this.#tokens.create(
      {
        user: grant.user,
        name: `${client?.name ?? grant.client} sign-in`.slice(0, 100),
        scope: grant.scope,
        expiresAt: new Date(now + lifetimeMs),
        ...(grant.resources === null ? {} : { resources: grant.resources }),
        origin: { via: 'oauth', client: grant.client, ip: clientIp },
      },
      { actor: grant.user, clientIp },
    );
    const body: Record<string, unknown> = {
      access_token: created.token,
      token_type: 'Bearer',
      expires_in: Math.floor(lifetimeMs / 1000),
      scope: grant.scope,
    };
    const remaining = signedInAt + this.#config.refreshMaxMs - now;
    if (this.#config.refreshTokens && remaining > 0) {
      const secret = newSecret();
      const family: FamilyRecord = {
        user: grant.user,
        client: grant.client,
        scope: grant.scope,
        resources: grant.resources,
        lifetimeMs: grant.lifetimeMs,
        ...(grant.claimGroups === undefined ? {} : { claimGroups: grant.claimGroups }),
        secret: digest(secret),
        signedInAt,
        accessTokenId: created.info.id,
        accessExpiresAt: now + lifetimeMs,
      };
      await this.#state.put('family', familyId, family, Math.min(this.#config.refreshIdleMs, remaining));
      body['refresh_token'] = `${this.#tokens.tokenPrefix}r_${familyId}.${secret}`;
    }
    return { status: 200, body, accessTokenId: created.info.id, family: familyId };
  }
}
