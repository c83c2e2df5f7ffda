import type { Scope, TokenRecord } from '../model.js';

/**
 * What backs a new token upstream, when the gate forwards an upstream credential instead of the
 * identity (access-token mode): the owner's Bitbucket password, used once to create (mint) a
 * Bitbucket HTTP access token and then forgotten, or a Bitbucket HTTP access token the owner
 * created in Bitbucket (linked, for SSO users without a password). Never stored as given, never
 * in an event, an error or a log.
 * @example
 * await gate.tokens.create({ user: 'alice', name: 'laptop', scope: 'read', upstream: { password } });
 */
export type UpstreamCredentials =
  | {
      /** The owner's Bitbucket password. */
      password: string;
      /** The owner's Bitbucket URL slug when known (saves a lookup; `bitbucketLogin` knows it). */
      slug?: string;
    }
  | {
      /** A Bitbucket HTTP access token of the owner, checked against Bitbucket before it is accepted. */
      bitbucketToken: string;
      /** The owner's Bitbucket URL slug when known. */
      slug?: string;
    };

/**
 * What `UpstreamHook.acquire` is asked for: a credential for one new token.
 * @example
 * const describe = (request: UpstreamRequest) =>
 *   `${request.user}/${request.id} (${request.scope}) for ${request.actor}`;
 */
export interface UpstreamRequest {
  /** The new token's id. */
  id: string;
  /** Its owner. */
  user: string;
  /** Its scope. */
  scope: Scope;
  /** The new token's expiry (epoch ms), or null. */
  expiresAt: number | null;
  /** Who creates it (the owner, or an administrator acting for them). */
  actor: string;
  /** Credentials given with the call, if any. */
  credentials: UpstreamCredentials | undefined;
  /** `rotate`/`copy`: the token being replaced or copied, whose credential may be shared. */
  from?: TokenRecord;
  /** The time of the request (epoch ms). */
  now: number;
}

/**
 * A credential ready to be stored with a new token.
 * @example
 * const linked: UpstreamGrant = { sealed: 'eyJ…', notAfter: null, origin: 'linked', undo: async () => {} };
 */
export interface UpstreamGrant {
  /** Opaque (encrypted) text for `TokenRecord.upstream`. */
  sealed: string;
  /** The credential stops working then: the new token must not outlive it (epoch ms, or null). */
  notAfter: number | null;
  /** How it was obtained, for the `token.created` event. */
  origin: 'minted' | 'linked' | 'shared';
  /** Undoes a grant whose token could not be stored (deletes a freshly minted upstream token). */
  undo(): Promise<void>;
}

/**
 * The seam between `TokenService` and an upstream mode (`bitbucketAccessTokens`): the service
 * asks for a credential before it stores a token and hands the record back once the token is
 * revoked. `createTokenGate({ upstream })` wires it; the service never sees how it works.
 * `bitbucketAccessTokens(...)` is the one the package ships; the interface is public for
 * `new TokenService({ upstream })` only.
 * @example
 * const none: UpstreamHook = {
 *   acquire: async () => {
 *     throw new ConflictError('No upstream credentials in this setup.');
 *   },
 *   release: async () => {},
 * };
 */
export interface UpstreamHook {
  /** Obtains (mints, links or shares) the credential of a new token; throws a TokenGateError when it cannot. */
  acquire(request: UpstreamRequest): Promise<UpstreamGrant>;
  /**
   * The token is revoked (already gone from the store): delete its upstream credential, unless
   * another live token shares it. Never rejects: failures are retried in the background.
   */
  release(record: TokenRecord): Promise<void>;
}
