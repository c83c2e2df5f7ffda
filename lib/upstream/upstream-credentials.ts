import type { Request, Response } from 'express';
import { type BitbucketTokenApi, bearerAuthorization, refusalOf } from '../bitbucket/token-api.js';
import { AuthenticationError, ConflictError, TokenGateError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse } from '../http/respond.js';
import { BoundedCache } from '../internal/bounded-cache.js';
import type { TokenRecord } from '../model.js';
import { isTokenRequest, verifiedRecord } from '../request/credential-slot.js';
import { addHeader, removeHeaders, spellingsOf } from '../request/header-rewrite.js';
import type { Step } from '../request/step.js';
import type { CredentialBox } from './credential-box.js';
import { DEFAULT_IDENTITY_HEADER, DEFAULT_JWT_HEADER } from './forward-identity.js';
import { type HeldAnswer, holdAnswer } from './held-response.js';

export interface UpstreamCredentialsParts {
  box: CredentialBox;
  api: BitbucketTokenApi;
  onEvent: EventListener | undefined;
  /** How long a token whose Bitbucket token is dead is refused without asking Bitbucket. Default 60,000 ms. */
  revokedTtlMs?: number;
}

const revokedError = () =>
  new AuthenticationError(
    'UPSTREAM_TOKEN_REVOKED',
    'Bitbucket no longer accepts the access token behind this API token: it was revoked or expired in Bitbucket. Create a new API token.',
  );

const notBacked = () =>
  new ConflictError(
    'This API token has no Bitbucket access token behind it (it was made before this proxy forwarded Bitbucket access tokens). Create a new API token.',
  );

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
}

/**
 * The last step of `protect()` in access-token mode, in place of `forwardIdentity`: for a
 * verified token, replaces the client's credentials with `Authorization: Bearer <the Bitbucket
 * token>` (decrypted once per verified-cache entry), and strips identity headers from every
 * request. Password and anonymous requests pass on with their own `Authorization`, for
 * Bitbucket to judge. A 401 Bitbucket answers for a forwarded token is held back and judged:
 * when the Bitbucket token itself no longer authenticates (revoked or expired in Bitbucket),
 * the client gets 401 `UPSTREAM_TOKEN_REVOKED` instead; a "not permitted" 401 passes unchanged.
 */
export function upstreamCredentials(parts: UpstreamCredentialsParts): Step {
  const { box, api } = parts;
  const emit = safeEmitter(parts.onEvent);
  const identity = spellingsOf([DEFAULT_IDENTITY_HEADER, DEFAULT_JWT_HEADER]);
  const identityAndAuthorization = spellingsOf([
    DEFAULT_IDENTITY_HEADER,
    DEFAULT_JWT_HEADER,
    'authorization',
  ]);
  // One decryption per verified-cache entry: the verifier hands every request the same record
  // object until the entry lapses, so a WeakMap keyed by it forgets with the cache.
  const opened = new WeakMap<TokenRecord, string | Promise<string>>();
  const dead = new BoundedCache<string, true>(10_000, parts.revokedTtlMs ?? 60_000);
  const probes = new Map<string, Promise<'pass' | 'replace'>>();

  function authorizationOf(record: TokenRecord): string | Promise<string> {
    const known = opened.get(record);
    if (known !== undefined) return known;
    const pending = box.open(record).then(
      (credential) => {
        const value = bearerAuthorization(credential.token);
        opened.set(record, value);
        return value;
      },
      (err: unknown) => {
        opened.delete(record);
        throw err;
      },
    );
    opened.set(record, pending);
    return pending;
  }

  /** Is a 401 about the Bitbucket token itself? Asks Bitbucket only when the answer does not say. */
  function judge(
    record: TokenRecord,
    authorization: string,
    answer: HeldAnswer,
  ): Promise<'pass' | 'replace'> {
    if (refusalOf(answer.headers, parseJson(answer.body)) === 'not-permitted') return Promise.resolve('pass');
    const running = probes.get(record.id);
    if (running !== undefined) return running;
    const probe = api
      .whoAmI(authorization)
      .then(
        (who) => (!who.ok && who.status === 401 && who.refusal === 'unauthenticated' ? 'replace' : 'pass'),
        () => 'pass' as const,
      )
      .finally(() => probes.delete(record.id));
    probes.set(record.id, probe);
    return probe;
  }

  function forward(
    req: Request,
    res: Response,
    next: (err?: unknown) => void,
    record: TokenRecord,
    authorization: string,
  ) {
    // The identity headers are never the client's to send; our token never travels upstream.
    removeHeaders(req, identityAndAuthorization);
    addHeader(req, 'authorization', authorization);
    holdAnswer(
      res,
      401,
      (answer) => judge(record, authorization, answer),
      () => {
        dead.set(record.id, true);
        refuse(req, res, revokedError(), emit, { tokenId: record.id, user: record.user });
      },
    );
    next();
  }

  return function upstreamCredentialsStep(req, res, auth, next) {
    const record = verifiedRecord(auth);
    if (record === undefined) {
      // Passwords and anonymous requests pass with their own credentials, never with identity headers.
      removeHeaders(req, isTokenRequest(auth) ? identityAndAuthorization : identity);
      next();
      return;
    }
    const known = { tokenId: record.id, user: record.user };
    if (record.upstream === null) {
      refuse(req, res, notBacked(), emit, known);
      return;
    }
    if (dead.has(record.id)) {
      refuse(req, res, revokedError(), emit, known);
      return;
    }
    const authorization = authorizationOf(record);
    if (typeof authorization === 'string') {
      forward(req, res, next, record, authorization);
      return;
    }
    authorization.then(
      (value) => forward(req, res, next, record, value),
      (err: unknown) => {
        if (err instanceof TokenGateError) refuse(req, res, err, emit, known);
        else next(err);
      },
    );
  };
}
