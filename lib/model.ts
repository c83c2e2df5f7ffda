/**
 * The library's shared vocabulary: what a token is, as stored and as shown. Everything else
 * imports these; this file imports nothing, so it sits at the bottom of the import graph.
 */

/**
 * What a token may do: `read` allows GET, HEAD, OPTIONS (and git clone, fetch, LFS downloads);
 * `write` adds POST, PUT, PATCH, DELETE (and git push).
 * @example
 * const scope: Scope = 'read';
 * await gate.tokens.create({ user: 'alice', name: 'CI clone', scope });
 */
export type Scope = 'read' | 'write';

export const SCOPES: readonly Scope[] = ['read', 'write'];

/**
 * What one token may be narrowed to, beyond its scope. Each field is `null` when the token is
 * not restricted that way. Restrictions only ever narrow: a token never gains anything its
 * owner or its scope does not have.
 * @example
 * const restrictions: TokenRestrictions = {
 *   allowedIps: ['10.20.0.0/16'],
 *   requiredHeaders: { 'x-ci-runner': 'build-7' },
 *   resources: ['OPS/deploy', '~alice/*'],
 * };
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
 * How a token was issued when no person made it by hand: `oauth` (a git credential helper or
 * another native client signed in through the browser or the device flow) or `federation` (a CI
 * identity token exchanged). `client` is the OAuth client id, `ip` the address it was issued to.
 * @example
 * const origin: TokenOrigin = { via: 'oauth', client: 'git', ip: '203.0.113.7' };
 */
export interface TokenOrigin {
  via: 'oauth' | 'federation';
  client: string;
  ip: string | null;
}

/**
 * A token as stored. Holds the hash of the secret, never the secret itself.
 * Times are epoch milliseconds. Stores keep every field as given.
 * @example
 * const record: TokenRecord | null = await store.get('a1B2c3D4e5F');
 * if (record !== null) console.log(record.user, new Date(record.createdAt));
 */
export interface TokenRecord extends TokenRestrictions {
  /** Public id: 11 base62 characters, part of the token string. */
  id: string;
  /** The owner: the Bitbucket user the token acts as. */
  user: string;
  /** 1 to 100 characters, no control characters. */
  name: string;
  /** `read` or `write`. */
  scope: Scope;
  /** Output of the configured `TokenHasher`, e.g. `hmac-sha256$…` or a bcrypt hash. */
  hash: string;
  /** When it was created. */
  createdAt: number;
  /** Who created it: the owner, or an administrator acting on the owner's behalf. */
  createdBy: string;
  /** When it stops working, or null for never. */
  expiresAt: number | null;
  /** When it last passed `protect()`, or null. */
  lastUsedAt: number | null;
  /** The client address of that use, or null. */
  lastUsedIp: string | null;
  /**
   * Opaque, encrypted upstream credential (the Bitbucket access token backing this token in
   * access-token mode), or null. Stores keep it verbatim; only the gate can read it.
   */
  upstream: string | null;
  /**
   * MAC over the id, owner, scope, expiry, restrictions, upstream credential and hash, keyed
   * from the server's pepper (see docs/security.md): a record changed by a direct store write
   * fails verification. Absent on records written before 0.3.0 (`express-api-tokens seal`).
   * Stores keep it verbatim.
   */
  seal?: string;
  /** How it was issued: null (or absent, in records written before 0.3.0) for a hand-made token. */
  origin?: TokenOrigin | null;
}

/**
 * Fields a store can change on a live token (`TokenStore.update`).
 * @example
 * const changes: TokenChanges = { name: 'CI (old)', resources: null };
 * await store.update('a1B2c3D4e5F', changes);
 */
export type TokenChanges = Partial<
  Pick<
    TokenRecord,
    'name' | 'expiresAt' | 'allowedIps' | 'requiredHeaders' | 'resources' | 'upstream' | 'seal'
  >
>;

/**
 * The public view of a token. Never holds the secret or its hash. Times are ISO strings or null.
 * Frozen: change a token through `gate.tokens`, not by editing this object.
 * @example
 * app.get('/rest/whoami', gate.protect(), (req, res) => {
 *   const token: TokenInfo | undefined = req.auth?.token;
 *   res.json({ user: token?.user, scope: token?.scope, expiresAt: token?.expiresAt });
 * });
 */
export interface TokenInfo extends Readonly<TokenRestrictions> {
  /** Public id (part of the token string, safe to show and log). */
  readonly id: string;
  /** The owner: the Bitbucket user the token acts as. */
  readonly user: string;
  /** 1 to 100 characters, no control characters. */
  readonly name: string;
  /** `read` or `write`. */
  readonly scope: Scope;
  /** When it was created. */
  readonly createdAt: string;
  /** Who created it: the owner, or an administrator acting on the owner's behalf. */
  readonly createdBy: string;
  /** When it stops working, or null for never. */
  readonly expiresAt: string | null;
  /** When it last passed `protect()` (the first use at once, later ones about once a minute), or null. */
  readonly lastUsedAt: string | null;
  /** The client address of that use, or null. */
  readonly lastUsedIp: string | null;
  /** How it was issued (`oauth`: signed in by git; `federation`: CI), or null for a hand-made token. */
  readonly origin: Readonly<TokenOrigin> | null;
}
