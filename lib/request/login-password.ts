import type { Request } from 'express';

/** A password login of this request: who logged in, and the password they gave. */
export interface PasswordLogin {
  /** The account as Bitbucket names it, and its URL slug. */
  user: string;
  slug: string;
  password: string;
}

// A WeakMap, not a property: nothing that inspects, logs or serialises the request can reach it,
// and it goes with the request.
const logins = new WeakMap<Request, PasswordLogin>();

/**
 * Remembers, for this request only, the password a login checked: in access-token mode the
 * management API mints the owner's Bitbucket access token with it. It is never stored.
 */
export function rememberPasswordLogin(req: Request, login: PasswordLogin): void {
  logins.set(req, login);
}

/** The password login of this request, when a password login (`bitbucketLogin`) let it in. */
export function passwordLoginOf(req: Request): PasswordLogin | undefined {
  return logins.get(req);
}
