import type { Request } from 'express';
import type { OAuthConfig } from './options.js';
import { DEVICE_GRANT } from './token-endpoint.js';

const HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/** The absolute URLs the server answers at, for one request. */
export interface OAuthUrls {
  /** The issuer: the app's public base URL without its trailing slash. */
  issuer: string;
  /** The token pages' base URL (ends with `/`). */
  pages: string;
  /** The endpoints' base URL (ends with `/`). */
  endpoints: string;
}

/** Public URLs: from `publicUrl`, else from the request's `Host` (as the token pages do). */
export function urlsFor(config: OAuthConfig, req: Request): OAuthUrls {
  let base: string;
  if (config.publicUrl !== undefined)
    base = config.publicUrl.href.endsWith('/') ? config.publicUrl.href : `${config.publicUrl.href}/`;
  else {
    const host = req.headers.host;
    base = `${req.protocol === 'https' ? 'https' : 'http'}://${typeof host === 'string' && HOST.test(host) ? host : 'localhost'}/`;
  }
  return {
    issuer: base.slice(0, -1),
    pages: `${base}${config.pagesPath}`,
    endpoints: `${base}${config.endpointsPath}`,
  };
}

/** The RFC 8414 authorization server metadata document. */
export function metadataDocument(config: OAuthConfig, urls: OAuthUrls, extraGrants: Iterable<string>) {
  return {
    issuer: urls.issuer,
    authorization_endpoint: `${urls.pages}oauth/authorize`,
    token_endpoint: `${urls.endpoints}token`,
    device_authorization_endpoint: `${urls.endpoints}device_authorization`,
    revocation_endpoint: `${urls.endpoints}revoke`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: [
      'authorization_code',
      ...(config.refreshTokens ? ['refresh_token'] : []),
      DEVICE_GRANT,
      ...extraGrants,
    ],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    scopes_supported: ['read', 'write'],
  };
}
