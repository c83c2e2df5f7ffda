import type { Request } from 'express';
import type { Scope, TokenInfo } from '../model.js';

/**
 * What the request path knows about a request, on `req.auth`. Each middleware reads what the
 * previous one put there and adds its own part. Never holds a secret.
 * @example
 * app.get('/rest/api/1.0/whoami', gate.protect(), (req, res) => {
 *   const auth: AuthContext | undefined = req.auth;
 *   res.json({ kind: auth?.kind, user: auth?.user, tokenId: auth?.token?.id, clientIp: auth?.clientIp });
 * });
 */
export interface AuthContext {
  /** `token` once a token is verified; `password` for a Basic password; else `anonymous`. */
  kind: 'token' | 'password' | 'anonymous';
  /** The token's owner (`token`) or the claimed user name (`password`). */
  user?: string | undefined;
  /** The verified token (`token` only). */
  token?: TokenInfo | undefined;
  /** The client address resolved by `clientIp` (canonical text), or null when unknown. */
  clientIp?: string | null | undefined;
  /** The scope this request needs, set by `requireScope`. */
  requiredScope?: Scope | undefined;
}

/** Where the request path keeps the credential itself, on `req.auth` (see `credential-slot.ts`). */
export const CREDENTIAL = Symbol('express-api-tokens.credential');

/** `req.auth` as the request path creates it: every field from the start, one object shape. */
class RequestAuth implements AuthContext {
  kind: AuthContext['kind'] = 'anonymous';
  user: string | undefined = undefined;
  token: TokenInfo | undefined = undefined;
  clientIp: string | null | undefined = undefined;
  requiredScope: Scope | undefined = undefined;
  /** The credential itself, off the enumerable fields (see `credential-slot.ts`). */
  [CREDENTIAL]: unknown = undefined;
}

/**
 * The request's `req.auth`, created with every field at once when absent: one object shape
 * for every request, rather than one that grows (and is copied) field by field. The symbol
 * field stays out of `JSON.stringify(req.auth)` and of every listing of its keys.
 */
export function authOf(req: Request): AuthContext {
  return req.auth ?? newAuth(req);
}

/** A new `req.auth` for the request, whatever it had (`protect()` judges every request afresh). */
export function newAuth(req: Request): AuthContext {
  const auth = new RequestAuth();
  req.auth = auth;
  return auth;
}

declare global {
  namespace Express {
    interface Request {
      /** Set by express-api-tokens' request path. */
      auth?: AuthContext;
    }
  }
}
