import type { Request } from 'express';
import type { OAuthConfig } from './options.js';

/** Who a request to the token, device or revocation endpoint says it is. */
export type ClientAuth =
  | { ok: true; clientId: string; viaHeader: boolean }
  | {
      ok: false;
      status: 400 | 401;
      error: 'invalid_client' | 'invalid_request';
      description: string;
      viaHeader: boolean;
    };

function decodeBasic(header: string): { id: string; secret: string } | null {
  const match = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header);
  if (match === null) return null;
  const text = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return null;
  try {
    // RFC 6749 §2.3.1: both parts are form-encoded before base64 (golang.org/x/oauth2 does so).
    const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { id: decode(text.slice(0, colon)), secret: decode(text.slice(colon + 1)) };
  } catch {
    return null;
  }
}

/**
 * Public clients, the ways native apps send them: `client_id` in the form, or HTTP Basic
 * `<client id>:` with an empty secret (golang.org/x/oauth2, which git-credential-oauth uses,
 * tries that first and retries in the form only after an error, by which time a code would be
 * spent; .NET clients do the same). Both at once must agree. A secret is refused: no client has one.
 */
export function authenticateClient(req: Request, form: URLSearchParams, config: OAuthConfig): ClientAuth {
  const header = req.headers.authorization;
  const viaHeader = typeof header === 'string' && header.length > 0;
  const inForm = form.getAll('client_id');
  if (inForm.length > 1)
    return {
      ok: false,
      status: 400,
      error: 'invalid_request',
      description: '`client_id` is given twice.',
      viaHeader,
    };
  let clientId = inForm[0];
  if (viaHeader) {
    const basic = decodeBasic(header);
    if (basic === null)
      return {
        ok: false,
        status: 401,
        error: 'invalid_client',
        description: 'Unreadable client authentication.',
        viaHeader,
      };
    if (basic.secret !== '')
      return {
        ok: false,
        status: 401,
        error: 'invalid_client',
        description: 'Clients of this server are public: send no client secret.',
        viaHeader,
      };
    if (clientId !== undefined && clientId !== basic.id)
      return {
        ok: false,
        status: 401,
        error: 'invalid_client',
        description: 'Two different client ids.',
        viaHeader,
      };
    clientId = basic.id;
  }
  if (clientId === undefined || clientId === '')
    return {
      ok: false,
      status: 401,
      error: 'invalid_client',
      description: 'Say which client you are (`client_id`).',
      viaHeader,
    };
  if (!config.clients.has(clientId))
    return { ok: false, status: 401, error: 'invalid_client', description: 'Unknown client.', viaHeader };
  return { ok: true, clientId, viaHeader };
}
