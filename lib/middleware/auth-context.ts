import type { Scope, TokenInfo } from '../model.js';

/**
 * What the request path knows about a request, on `req.auth`. Each middleware reads what the
 * previous one put there and adds its own part. Never holds a secret.
 */
export interface AuthContext {
  /** `token` once a token is verified; `password` for a Basic password; else `anonymous`. */
  kind: 'token' | 'password' | 'anonymous';
  /** The token's owner (`token`) or the claimed user name (`password`). */
  user?: string;
  /** The verified token (`token` only). */
  token?: TokenInfo;
  /** The client address resolved by `clientIp` (canonical text), or null when unknown. */
  clientIp?: string | null;
  /** The scope this request needs, set by `requireScope`. */
  requiredScope?: Scope;
}

declare global {
  namespace Express {
    interface Request {
      /** Set by express-api-tokens' request path. */
      auth?: AuthContext;
    }
  }
}
