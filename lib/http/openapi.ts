import { statusOf, type TokenGateErrorCode } from '../errors.js';

/**
 * The management API (`gate.router()`) as an OpenAPI 3.1 document: every route, parameter,
 * body, response and error code. The router serves it at `GET /openapi.json`; docs/ holds a
 * copy (`node --import tsx scripts/write-openapi.ts`), and tests check every live answer against it.
 */

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: Schema): Schema => ({ oneOf: [schema, { type: 'null' }] });
const json = (schema: Schema) => ({ 'application/json': { schema } });

/** Codes every logged-in route may answer, besides its own. */
const COMMON: TokenGateErrorCode[] = [
  'NOT_AUTHENTICATED',
  'STORE_UNAVAILABLE',
  'UPSTREAM_UNAVAILABLE',
  'BUSY',
];
/** Codes a request carrying an API token gets here (a token may only revoke itself). */
const TOKEN_CALLER: TokenGateErrorCode[] = ['TOKEN_INVALID', 'TOKEN_CANNOT_MANAGE'];
/** Codes of a change sent from another site (a browser's cached login must not drive the API). */
const CROSS_SITE: TokenGateErrorCode[] = ['CSRF_REJECTED'];
/** Codes of a change whose body is not a JSON one (or was sent from another site). */
const BODY: TokenGateErrorCode[] = [
  'VALIDATION_FAILED',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  ...CROSS_SITE,
];

/** Error answers grouped by status, each listing the codes it may carry. */
function errors(codes: TokenGateErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, Set<TokenGateErrorCode>>();
  for (const code of [...codes, ...COMMON]) {
    const status = statusOf(code);
    byStatus.set(status, (byStatus.get(status) ?? new Set()).add(code));
  }
  const out: Record<string, unknown> = {};
  for (const [status, set] of [...byStatus].sort(([a], [b]) => a - b)) {
    const list = [...set].sort();
    out[String(status)] = {
      description: `Refused: ${list.join(', ')}.`,
      ...(status === 401 ? { headers: { 'WWW-Authenticate': { schema: { type: 'string' } } } } : {}),
      ...(status === 503 || status === 429
        ? { headers: { 'Retry-After': { schema: { type: 'string' } } } }
        : {}),
      content: json({
        allOf: [
          ref('Errors'),
          { properties: { errors: { items: { properties: { code: { enum: list } } } } } },
        ],
      }),
    };
  }
  return out;
}

const idParameter = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'The token id: 11 base62 characters (the part of the token after the prefix).',
  schema: { type: 'string' },
};

const query = (name: string, description: string, schema: Schema = { type: 'string' }) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});

const restrictionProperties = {
  allowedIps: {
    ...nullable({ type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 100 }),
    description: 'Addresses, CIDR ranges and first-last ranges the token may be used from; null: any.',
  },
  requiredHeaders: {
    ...nullable({
      type: 'object',
      additionalProperties: { type: 'string' },
      minProperties: 1,
      maxProperties: 20,
    }),
    description: 'Headers every request must carry with exactly this value; null: none.',
  },
  resources: {
    ...nullable({ type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 100 }),
    description: 'Projects and repositories (PROJ, PROJ/repo, ~user/repo, * within a part); null: all.',
  },
  rateLimit: {
    ...nullable(ref('RateLimit')),
    description:
      "The token's own rate limit (at most the administrator's maximum); null: the proxy's default.",
  },
};

const bitbucketToken = {
  type: 'string',
  description:
    "Access-token mode: a Bitbucket HTTP access token of the owner to link (else the owner's password login mints one).",
};

const created = {
  description: 'Created. `token` is the only copy of the secret: show it once.',
  content: json(ref('CreatedToken')),
};

/** The OpenAPI 3.1 document of the management API. */
export function managementApiDocument(): Record<string, unknown> {
  const tokenInfoProperties = {
    id: { type: 'string', pattern: '^[0-9A-Za-z]{11}$' },
    user: { type: 'string', description: 'The owner: the Bitbucket user the token acts as.' },
    name: { type: 'string', minLength: 1, maxLength: 100 },
    scope: ref('Scope'),
    createdAt: { type: 'string', format: 'date-time' },
    createdBy: { type: 'string' },
    expiresAt: nullable({ type: 'string', format: 'date-time' }),
    lastUsedAt: nullable({ type: 'string', format: 'date-time' }),
    lastUsedIp: nullable({ type: 'string' }),
    origin: {
      ...nullable({
        type: 'object',
        additionalProperties: false,
        required: ['via', 'client', 'ip'],
        properties: {
          via: { enum: ['oauth', 'federation'] },
          client: { type: 'string' },
          ip: nullable({ type: 'string' }),
        },
      }),
      description:
        'How it was issued: signed in by a git credential helper (oauth, with its client id) or exchanged for a CI identity token (federation, with the rule); null: made by hand.',
    },
    ...restrictionProperties,
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'express-api-tokens management API',
      version: '1',
      description:
        "Create, list, read, change, rotate, copy and revoke personal API tokens. Mounted by `gate.router()` behind a login; the caller is its principal. Errors use Bitbucket's REST error shape.",
    },
    servers: [{ url: '/', description: 'Where gate.router() is mounted, e.g. /tokens/api' }],
    paths: {
      '/': {
        post: {
          operationId: 'createToken',
          summary: 'Create a token (for the caller, or for `user` with manageOthers).',
          requestBody: {
            required: true,
            content: json({
              type: 'object',
              additionalProperties: false,
              required: ['name', 'scope'],
              properties: {
                name: { type: 'string', minLength: 1, maxLength: 100 },
                scope: ref('Scope'),
                expiresInDays: { type: 'integer', minimum: 1, description: 'At most expiry.maxDays.' },
                expiresAt: { type: 'string', format: 'date-time', description: 'Instead of expiresInDays.' },
                user: { type: 'string', description: 'The owner, when not the caller (needs manageOthers).' },
                ...restrictionProperties,
                bitbucketToken,
              },
            }),
          },
          responses: {
            '201': created,
            ...errors([
              ...BODY,
              'TOKEN_LIMIT_REACHED',
              'PERMISSION_DENIED',
              'TOKEN_CANNOT_MINT',
              'TOKEN_INVALID',
              'UPSTREAM_TOKEN_REQUIRED',
              'PASSWORD_INVALID',
              'UPSTREAM_UNREACHABLE',
            ]),
          },
        },
        get: {
          operationId: 'listTokens',
          summary:
            "The caller's tokens; with manageOthers, anyone's (`user`, `all`) and the token manager's filters.",
          parameters: [
            query('user', "Another user's tokens (needs manageOthers)."),
            query('all', 'Every user’s tokens (needs manageOthers).', {
              type: 'string',
              enum: ['true', 'false'],
            }),
            query('name', 'Case-insensitive substring of the name.'),
            query('scope', 'Tokens of this scope.', ref('Scope')),
            query('restricted', 'With (true) or without (false) restrictions.', {
              type: 'string',
              enum: ['true', 'false'],
            }),
            query('expiresBefore', 'Expiring before this time.', { type: 'string', format: 'date-time' }),
            query('lastUsedBefore', 'Last used before this time, or never.', {
              type: 'string',
              format: 'date-time',
            }),
            query('createdAfter', 'Created after this time.', { type: 'string', format: 'date-time' }),
            query('start', 'Where the page starts (nextPageStart of the previous page).', {
              type: 'integer',
              minimum: 0,
            }),
            query('limit', 'Most tokens on the page. Default 25.', {
              type: 'integer',
              minimum: 1,
              maximum: 1000,
            }),
          ],
          responses: {
            '200': { description: 'One page, newest first.', content: json(ref('TokenPage')) },
            ...errors(['VALIDATION_FAILED', 'PERMISSION_DENIED', ...TOKEN_CALLER]),
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openApiDocument',
          summary: 'This document.',
          responses: {
            '200': { description: 'The OpenAPI 3.1 document.', content: json({ type: 'object' }) },
          },
        },
      },
      '/revoke-all': {
        post: {
          operationId: 'revokeAllTokens',
          summary: "Revoke every token of a user (offboarding); another user's needs manageOthers.",
          requestBody: {
            required: true,
            content: json({
              type: 'object',
              additionalProperties: false,
              required: ['user'],
              properties: { user: { type: 'string' } },
            }),
          },
          responses: {
            '200': {
              description: 'How many tokens were revoked.',
              content: json({
                type: 'object',
                additionalProperties: false,
                required: ['user', 'revoked'],
                properties: { user: { type: 'string' }, revoked: { type: 'integer', minimum: 0 } },
              }),
            },
            ...errors([...BODY, 'PERMISSION_DENIED', ...TOKEN_CALLER]),
          },
        },
      },
      '/{id}': {
        parameters: [idParameter],
        get: {
          operationId: 'getToken',
          summary: 'One token (the caller’s own; anyone’s with manageOthers).',
          responses: {
            '200': { description: 'The token.', content: json(ref('TokenInfo')) },
            ...errors(['TOKEN_NOT_FOUND', ...TOKEN_CALLER]),
          },
        },
        patch: {
          operationId: 'updateToken',
          summary: 'Rename a token or change its restrictions (null removes one).',
          requestBody: {
            required: true,
            content: json({
              type: 'object',
              additionalProperties: false,
              minProperties: 1,
              properties: {
                name: { type: 'string', minLength: 1, maxLength: 100 },
                ...restrictionProperties,
              },
            }),
          },
          responses: {
            '200': { description: 'The changed token.', content: json(ref('TokenInfo')) },
            ...errors([...BODY, 'TOKEN_NOT_FOUND', ...TOKEN_CALLER]),
          },
        },
        delete: {
          operationId: 'revokeToken',
          summary: 'Revoke a token, at once on every instance. A token may revoke itself (a kill switch).',
          responses: {
            '204': { description: 'Revoked.' },
            ...errors(['TOKEN_NOT_FOUND', 'TOKEN_INVALID', 'TOKEN_CANNOT_MANAGE', ...CROSS_SITE]),
          },
        },
      },
      '/{id}/rotate': {
        parameters: [idParameter],
        post: {
          operationId: 'rotateToken',
          summary: 'Replace a token by a new one like it; the old one works for graceMs more (default 24 h).',
          requestBody: {
            required: false,
            content: json({
              type: 'object',
              additionalProperties: false,
              properties: {
                graceMs: { type: 'integer', minimum: 0, maximum: 31_536_000_000 },
                bitbucketToken,
              },
            }),
          },
          responses: {
            '201': created,
            ...errors([
              ...BODY,
              'TOKEN_NOT_FOUND',
              'PERMISSION_DENIED',
              ...TOKEN_CALLER,
              'UPSTREAM_UNREACHABLE',
            ]),
          },
        },
      },
      '/{id}/copy': {
        parameters: [idParameter],
        post: {
          operationId: 'copyToken',
          summary:
            'Create another token like this one (a new secret, the same name, scope and restrictions).',
          requestBody: {
            required: false,
            content: json({ type: 'object', additionalProperties: false, properties: { bitbucketToken } }),
          },
          responses: {
            '201': created,
            ...errors([
              ...BODY,
              'TOKEN_NOT_FOUND',
              'PERMISSION_DENIED',
              'TOKEN_LIMIT_REACHED',
              ...TOKEN_CALLER,
              'UPSTREAM_UNREACHABLE',
            ]),
          },
        },
      },
    },
    components: {
      schemas: {
        Scope: { type: 'string', enum: ['read', 'write'] },
        RateLimit: {
          type: 'object',
          additionalProperties: false,
          required: ['requests', 'windowSeconds'],
          properties: {
            requests: { type: 'integer', minimum: 1, maximum: 1_000_000_000 },
            windowSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
          },
        },
        TokenInfo: {
          type: 'object',
          additionalProperties: false,
          required: Object.keys(tokenInfoProperties),
          properties: tokenInfoProperties,
        },
        CreatedToken: {
          type: 'object',
          additionalProperties: false,
          required: ['token', ...Object.keys(tokenInfoProperties)],
          properties: {
            token: { type: 'string', description: 'The secret, shown once.' },
            ...tokenInfoProperties,
          },
        },
        TokenPage: {
          type: 'object',
          additionalProperties: false,
          required: ['values', 'size', 'limit', 'start', 'isLastPage'],
          properties: {
            values: { type: 'array', items: ref('TokenInfo') },
            size: { type: 'integer', minimum: 0 },
            limit: { type: 'integer', minimum: 1 },
            start: { type: 'integer', minimum: 0 },
            isLastPage: { type: 'boolean' },
            nextPageStart: { type: 'integer', minimum: 0 },
          },
        },
        Errors: {
          type: 'object',
          additionalProperties: false,
          required: ['errors'],
          description: "Bitbucket's REST error shape.",
          properties: {
            errors: {
              type: 'array',
              minItems: 1,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['context', 'message', 'exceptionName', 'code'],
                properties: {
                  context: nullable({ type: 'string' }),
                  message: { type: 'string' },
                  exceptionName: { type: 'null' },
                  code: { type: 'string' },
                  requiredScope: ref('Scope'),
                  restriction: { type: 'string' },
                },
              },
            },
          },
        },
      },
    },
  };
}
