/**
 * The library's shared vocabulary: what a token is, as stored and as shown. Everything else
 * imports these; this file imports nothing, so it sits at the bottom of the import graph.
 */

/** What a token may do: `read` allows GET, HEAD, OPTIONS; `write` adds POST, PUT, PATCH, DELETE. */
export type Scope = 'read' | 'write';

export const SCOPES: readonly Scope[] = ['read', 'write'];

/**
 * What one token may be narrowed to, beyond its scope. Each field is `null` when the token is
 * not restricted that way. Restrictions only ever narrow: a token never gains anything its
 * owner or its scope does not have.
 */
export interface TokenRestrictions {
  /** Addresses, CIDR ranges and `first-last` ranges (canonical text) the token may be used from. */
  allowedIps: readonly string[] | null;
  /** Headers every request must carry: lower-case name → exact value. */
  requiredHeaders: Readonly<Record<string, string>> | null;
  /** Bitbucket projects and repositories the token may touch: `PROJ`, `PROJ/repo`, `~user/repo`, `*` wildcards. */
  resources: readonly string[] | null;
}

/**
 * A token as stored. Holds the hash of the secret, never the secret itself.
 * Times are epoch milliseconds.
 */
export interface TokenRecord extends TokenRestrictions {
  id: string;
  user: string;
  name: string;
  scope: Scope;
  /** Output of the configured `TokenHasher`, e.g. `hmac-sha256$…` or a bcrypt hash. */
  hash: string;
  createdAt: number;
  createdBy: string;
  expiresAt: number | null;
  lastUsedAt: number | null;
  lastUsedIp: string | null;
  /**
   * Opaque, encrypted upstream credential (the Bitbucket access token backing this token in
   * access-token mode), or null. Stores keep it verbatim; only the gate can read it.
   */
  upstream: string | null;
}

/** Fields a store can change on a live token (`TokenStore.update`). */
export type TokenChanges = Partial<
  Pick<TokenRecord, 'name' | 'expiresAt' | 'allowedIps' | 'requiredHeaders' | 'resources' | 'upstream'>
>;

/**
 * The public view of a token. Never holds the secret or its hash. Times are ISO strings or null.
 * Frozen: change a token through `gate.tokens`, not by editing this object.
 */
export interface TokenInfo extends Readonly<TokenRestrictions> {
  /** Public id (part of the token string, safe to show and log). */
  readonly id: string;
  /** The owner: the Bitbucket user the token acts as. */
  readonly user: string;
  readonly name: string;
  readonly scope: Scope;
  readonly createdAt: string;
  /** Who created it: the owner, or an administrator acting on the owner's behalf. */
  readonly createdBy: string;
  readonly expiresAt: string | null;
  readonly lastUsedAt: string | null;
  readonly lastUsedIp: string | null;
}
