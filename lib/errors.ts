/**
 * Every failure the library reports carries a stable `code`, so callers can
 * `switch (err.code)` without parsing messages. Each code has exactly one HTTP status (the
 * table below), and each status one error class. Messages never contain a secret and never
 * say whether a token id exists.
 */
const STATUS = {
  CREDENTIALS_MALFORMED: 400,
  VALIDATION_FAILED: 400,
  TOKEN_LIMIT_REACHED: 400,
  OAUTH_GRANT_REPLAYED: 400,
  CREDENTIALS_MISSING: 401,
  CREDENTIALS_UNSUPPORTED: 401,
  TOKEN_INVALID: 401,
  TOKEN_USER_MISMATCH: 401,
  PASSWORD_AUTH_DISABLED: 401,
  PASSWORD_INVALID: 401,
  NOT_AUTHENTICATED: 401,
  LOGIN_FAILED: 401,
  UPSTREAM_TOKEN_REVOKED: 401,
  IP_NOT_ALLOWED: 403,
  GROUP_REQUIRED: 403,
  SCOPE_INSUFFICIENT: 403,
  HEADER_REQUIRED: 403,
  RESOURCE_NOT_ALLOWED: 403,
  TOKEN_CANNOT_MINT: 403,
  TOKEN_CANNOT_MANAGE: 403,
  PERMISSION_DENIED: 403,
  CSRF_REJECTED: 403,
  LOGIN_CAPTCHA_REQUIRED: 403,
  TOKEN_NOT_FOUND: 404,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  UPSTREAM_TOKEN_REQUIRED: 409,
  BODY_TOO_LARGE: 413,
  TOO_MANY_ATTEMPTS: 429,
  UPSTREAM_UNREACHABLE: 502,
  STORE_UNAVAILABLE: 503,
  UPSTREAM_UNAVAILABLE: 503,
  UPSTREAM_CREDENTIAL_UNAVAILABLE: 503,
  BUSY: 503,
  UPSTREAM_TIMEOUT: 504,
} as const;

type StatusTable = typeof STATUS;
/**
 * Every code the library answers with; each has exactly one HTTP status (`statusOf`).
 * @example
 * const retryable = (code: TokenGateErrorCode) => statusOf(code) === 503 || code === 'TOO_MANY_ATTEMPTS';
 */
export type TokenGateErrorCode = keyof StatusTable;
type CodeOf<S extends number> = {
  [C in TokenGateErrorCode]: StatusTable[C] extends S ? C : never;
}[TokenGateErrorCode];

/**
 * Codes of `BadRequestError` (400).
 * @example
 * const code: BadRequestCode = 'TOKEN_LIMIT_REACHED';
 */
export type BadRequestCode = CodeOf<400>;
/**
 * Codes of `AuthenticationError` (401).
 * @example
 * const code: AuthenticationCode = 'TOKEN_INVALID';
 */
export type AuthenticationCode = CodeOf<401>;
/**
 * Codes of `ForbiddenError` (403).
 * @example
 * const code: ForbiddenCode = 'SCOPE_INSUFFICIENT';
 */
export type ForbiddenCode = CodeOf<403>;
/**
 * Codes of `UnavailableError` (503).
 * @example
 * const code: UnavailableCode = 'STORE_UNAVAILABLE';
 */
export type UnavailableCode = CodeOf<503>;
/** Codes of `GatewayError` (502, 504). */
export type GatewayCode = CodeOf<502 | 504>;

/**
 * The HTTP status of a code.
 * @example
 * statusOf('SCOPE_INSUFFICIENT'); // 403
 */
export function statusOf(code: TokenGateErrorCode): number {
  return STATUS[code];
}

/**
 * Base class of every error this library throws or answers with.
 * @example
 * try {
 *   await gate.tokens.create({ user: 'alice', name: 'CI', scope: 'read' });
 * } catch (err) {
 *   if (err instanceof TokenGateError) console.log(err.code, err.status);
 * }
 */
export class TokenGateError extends Error {
  /** The class name, e.g. `'ValidationError'`. */
  override readonly name: string = 'TokenGateError';
  /** Stable machine-readable code. */
  readonly code: TokenGateErrorCode;
  /** HTTP status the error is answered with; fixed by the code. */
  readonly status: number;
  /** Seconds after which a retry may succeed (429 and 503 answers). */
  readonly retryAfter: number | undefined;

  constructor(code: TokenGateErrorCode, message: string, options?: ErrorOptions & { retryAfter?: number }) {
    super(message, options);
    this.code = code;
    this.status = STATUS[code];
    this.retryAfter = options?.retryAfter;
  }
}

/**
 * 400: the request is malformed. Codes: `CREDENTIALS_MALFORMED` (an unreadable
 * `Authorization` header), `TOKEN_LIMIT_REACHED` (`maxTokensPerUser`), and `VALIDATION_FAILED`
 * through its subclass `ValidationError`.
 * @example
 * if (err instanceof BadRequestError && err.code === 'TOKEN_LIMIT_REACHED')
 *   console.log('Revoke a token first.');
 */
export class BadRequestError extends TokenGateError {
  /** `'BadRequestError'` (`'ValidationError'` for that subclass). */
  override readonly name: string = 'BadRequestError';
  constructor(code: BadRequestCode, message: string) {
    super(code, message);
  }
}

/**
 * 400 `VALIDATION_FAILED`: an input failed validation; the message names the field.
 * @example
 * if (err instanceof ValidationError) console.log(`${err.field}: ${err.message}`);
 */
export class ValidationError extends BadRequestError {
  /** `'ValidationError'`. */
  override readonly name = 'ValidationError';
  /** The field that failed, e.g. `name` or `expiresInDays`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super('VALIDATION_FAILED', message);
    this.field = field;
  }
}

/**
 * 401: credentials are missing, malformed or wrong. Codes: `CREDENTIALS_MISSING`,
 * `CREDENTIALS_UNSUPPORTED` (a scheme other than Basic or Bearer), `TOKEN_INVALID`,
 * `TOKEN_USER_MISMATCH`, `PASSWORD_AUTH_DISABLED`, `PASSWORD_INVALID`, `NOT_AUTHENTICATED`,
 * `LOGIN_FAILED` (a single sign-on login that did not complete: wrong state, refused, bad ID token),
 * `UPSTREAM_TOKEN_REVOKED` (Bitbucket no longer accepts the access token behind ours).
 * @example
 * sendError(req, res, new AuthenticationError('CREDENTIALS_MISSING', 'Log in first.'), 'basic');
 */
export class AuthenticationError extends TokenGateError {
  /** `'AuthenticationError'`. */
  override readonly name = 'AuthenticationError';
  constructor(code: AuthenticationCode, message: string) {
    super(code, message);
  }
}

/**
 * 403: the caller is known but may not do this. Codes: `IP_NOT_ALLOWED`, `GROUP_REQUIRED`,
 * `SCOPE_INSUFFICIENT`, `HEADER_REQUIRED`, `RESOURCE_NOT_ALLOWED`, `TOKEN_CANNOT_MINT`,
 * `TOKEN_CANNOT_MANAGE`, `PERMISSION_DENIED`, `CSRF_REJECTED`, `LOGIN_CAPTCHA_REQUIRED`.
 * @example
 * sendError(req, res, new ForbiddenError('PERMISSION_DENIED', 'Only release managers may push tags.'));
 */
export class ForbiddenError extends TokenGateError {
  /** `'ForbiddenError'`. */
  override readonly name = 'ForbiddenError';
  constructor(code: ForbiddenCode, message: string) {
    super(code, message);
  }
}

/**
 * 404 `TOKEN_NOT_FOUND`: no such token, or one the caller may not see (indistinguishable on
 * purpose); `NOT_FOUND`: no such route.
 * @example
 * const rotated = await gate.tokens.rotate(id).catch((err: unknown) => {
 *   if (err instanceof NotFoundError) return null; // unknown, expired or revoked
 *   throw err;
 * });
 */
export class NotFoundError extends TokenGateError {
  /** `'NotFoundError'`. */
  override readonly name = 'NotFoundError';
  constructor(message = 'No such token.', code: 'TOKEN_NOT_FOUND' | 'NOT_FOUND' = 'TOKEN_NOT_FOUND') {
    super(code, message);
  }
}

/**
 * 405 `METHOD_NOT_ALLOWED`: an HTTP method tokens may not use.
 * @example
 * if (err instanceof MethodNotAllowedError) console.log(err.status); // 405
 */
export class MethodNotAllowedError extends TokenGateError {
  /** `'MethodNotAllowedError'`. */
  override readonly name = 'MethodNotAllowedError';
  constructor(message = 'This HTTP method is not allowed with API tokens.') {
    super('METHOD_NOT_ALLOWED', message);
  }
}

/**
 * 409 `UPSTREAM_TOKEN_REQUIRED`: access-token mode needs a Bitbucket token that is not at hand.
 * @example
 * if (err instanceof ConflictError) console.log('Ask the user for a Bitbucket access token of theirs.');
 */
export class ConflictError extends TokenGateError {
  /** `'ConflictError'`. */
  override readonly name = 'ConflictError';
  constructor(message: string) {
    super('UPSTREAM_TOKEN_REQUIRED', message);
  }
}

/**
 * 413 `BODY_TOO_LARGE`: a request body over the limit.
 * @example
 * sendError(req, res, new PayloadTooLargeError());
 */
export class PayloadTooLargeError extends TokenGateError {
  /** `'PayloadTooLargeError'`. */
  override readonly name = 'PayloadTooLargeError';
  constructor(message = 'The request body is too large.') {
    super('BODY_TOO_LARGE', message);
  }
}

/**
 * 429 `TOO_MANY_ATTEMPTS`: too many failed attempts from this address, with `retryAfter`.
 * @example
 * if (err instanceof TooManyAttemptsError) console.log(`retry in ${err.retryAfter} s`);
 */
export class TooManyAttemptsError extends TokenGateError {
  /** `'TooManyAttemptsError'`. */
  override readonly name = 'TooManyAttemptsError';
  constructor(retryAfter: number, message = 'Too many failed authentication attempts. Try again later.') {
    super('TOO_MANY_ATTEMPTS', message, { retryAfter });
  }
}

/**
 * 503: a backend failed, timed out or is saturated; the request is refused (fail closed).
 * Codes: `STORE_UNAVAILABLE` (see `StoreError`), `UPSTREAM_UNAVAILABLE` (Bitbucket, a group
 * resolver), `UPSTREAM_CREDENTIAL_UNAVAILABLE` (a stored Bitbucket token cannot be decrypted),
 * `BUSY` (too many slow checks queued).
 * @example
 * if (err instanceof UnavailableError) console.error(`${err.code}: ${err.message}`); // answered 503
 */
export class UnavailableError extends TokenGateError {
  /** `'UnavailableError'` (`'StoreError'` for that subclass). */
  override readonly name: string = 'UnavailableError';
  constructor(code: UnavailableCode, message: string, options?: ErrorOptions) {
    super(code, message, { ...options, retryAfter: 1 });
  }
}

/**
 * 503 `STORE_UNAVAILABLE`: the token store failed or timed out. Stores reject with it, never
 * with "not found", so the gate fails closed.
 * @example
 * try {
 *   await gate.tokens.list('alice');
 * } catch (err) {
 *   if (err instanceof StoreError) console.error(`token store down: ${err.message}`);
 * }
 */
export class StoreError extends UnavailableError {
  /** `'StoreError'`. */
  override readonly name = 'StoreError';
  constructor(message = 'The token store is unavailable. Try again later.', options?: ErrorOptions) {
    super('STORE_UNAVAILABLE', message, options);
  }
}

/**
 * 502 `UPSTREAM_UNREACHABLE`: the forwarder could not reach the upstream (refused, reset, DNS);
 * 504 `UPSTREAM_TIMEOUT`: the upstream stayed silent past the forwarder's `timeoutMs`.
 * @example
 * sendError(req, res, new GatewayError('UPSTREAM_TIMEOUT', 'Bitbucket did not answer in time.'));
 */
export class GatewayError extends TokenGateError {
  /** `'GatewayError'`. */
  override readonly name = 'GatewayError';
  constructor(code: GatewayCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/**
 * True for errors of this library (any subclass).
 * @example
 * if (isTokenGateError(err)) sendError(req, res, err);
 */
export function isTokenGateError(err: unknown): err is TokenGateError {
  return err instanceof TokenGateError;
}
