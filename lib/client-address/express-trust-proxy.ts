import type { Request } from 'express';

/**
 * Express's own trust model, kept for `forwardTo` alone. The library's client address comes
 * from `trustedProxies` + `clientIpHeader` (see `resolver.ts`), never from `trust proxy`:
 * the gate must work the same in any app, whatever the app set. `forwardTo` resolves no client
 * address (it appends the socket peer to `X-Forwarded-For` as every proxy does); it only
 * decides whether to pass an earlier `X-Forwarded-Host` on, and that must agree with
 * `req.protocol` (its `X-Forwarded-Proto`), which Express derives from `trust proxy`.
 */

/** True when Express's `trust proxy` setting believes the socket peer (as `req.protocol` does). */
export function expressTrustsPeer(req: Request): boolean {
  const trust: unknown = req.app?.get('trust proxy fn');
  return typeof trust === 'function' && trust(req.socket.remoteAddress, 0) === true;
}
