/** What a token may do: `read` allows GET, HEAD, OPTIONS; `write` adds POST, PUT, PATCH, DELETE. */
export type Scope = 'read' | 'write';

export const SCOPES: readonly Scope[] = ['read', 'write'];

/** The public view of a token. Never holds the secret or its hash. Times are ISO strings or null. */
export interface TokenInfo {
  /** Public id (part of the token string, safe to show and log). */
  id: string;
  /** The owner: the Bitbucket user the token acts as. */
  user: string;
  name: string;
  scope: Scope;
  createdAt: string;
  /** Who created it: the owner, or an administrator acting on the owner's behalf. */
  createdBy: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  lastUsedIp: string | null;
}
