import type { Request, Response } from 'express';
import type { TokenService } from '../tokens/service.js';
import { authenticateClient } from './client-auth.js';
import { oauthError, parseRefreshToken } from './issuer.js';
import { type EndpointContext, readForm, resultOfError, sendResult } from './token-endpoint.js';

/**
 * POST /revoke (RFC 7009): ends an access token or a refresh token (with its family) issued to
 * the calling client. Unknown and foreign tokens get the same 200, so the answer tells nothing.
 */
export function revocationEndpoint(context: EndpointContext, tokens: TokenService) {
  return async function oauthRevoke(req: Request, res: Response): Promise<void> {
    const form = readForm(req);
    if (typeof form === 'string') {
      sendResult(res, oauthError(400, 'invalid_request', 'Send one form, each parameter once.'));
      return;
    }
    const client = authenticateClient(req, form, context.config);
    if (!client.ok) {
      sendResult(res, oauthError(client.status, client.error, client.description));
      return;
    }
    const token = form.get('token');
    if (token === null || token === '' || token.length > 500) {
      sendResult(res, oauthError(400, 'invalid_request', '`token` is required.'));
      return;
    }
    const clientIp = context.clientIp(req);
    try {
      if (parseRefreshToken(token) !== null)
        await context.issuer.revokeRefresh(token, client.clientId, clientIp);
      else {
        const info = await tokens.verify(token);
        if (info !== null && info.origin?.via === 'oauth' && info.origin.client === client.clientId)
          await tokens.revoke(info.id, { actor: info.user, clientIp });
      }
      res.setHeader('Cache-Control', 'no-store');
      res.status(200).end();
    } catch (err) {
      const result = resultOfError(err);
      if (result === undefined) throw err;
      sendResult(res, result);
    }
  };
}
