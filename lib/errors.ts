/**
 * Every failure the library reports carries a stable `code`, so callers can
 * `switch (err.code)` without parsing messages. Messages never contain a secret
 * and never say whether a token id exists.
 */
export type TokenGateErrorCode =
  | 'CREDENTIALS_MISSING'
  | 'CREDENTIALS_MALFORMED'
  | 'TOKEN_INVALID'
  | 'TOKEN_USER_MISMATCH'
  | 'PASSWORD_AUTH_DISABLED'
  | 'PASSWORD_INVALID'
  | 'IP_NOT_ALLOWED'
  | 'GROUP_REQUIRED'
  | 'SCOPE_INSUFFICIENT'
  | 'METHOD_NOT_ALLOWED'
  | 'TOKEN_CANNOT_MINT'
  | 'PERMISSION_DENIED'
  | 'NOT_AUTHENTICATED'
  | 'TOKEN_NOT_FOUND'
  | 'VALIDATION_FAILED'
  | 'TOO_MANY_ATTEMPTS'
  | 'STORE_UNAVAILABLE'
  | 'UPSTREAM_UNAVAILABLE'
  | 'BUSY';

/** Base class of every error this library throws or answers with. */
export class TokenGateError extends Error {
  override readonly name: string = 'TokenGateError';
  /** Stable machine-readable code. */
  readonly code: TokenGateErrorCode;
  /** HTTP status the error is answered with. */
  readonly status: number;
  /** Seconds after which a retry may succeed (429 and 503 answers). */
  readonly retryAfter: number | undefined;

  constructor(
    code: TokenGateErrorCode,
    status: number,
    message: string,
    options?: ErrorOptions & { retryAfter?: number },
  ) {
    super(message, options);
    this.code = code;
    this.status = status;
    this.retryAfter = options?.retryAfter;
  }
}

/** 401: credentials are missing, malformed or wrong. */
export class AuthenticationError extends TokenGateError {
  override readonly name = 'AuthenticationError';
  constructor(code: TokenGateErrorCode, message: string, status = 401) {
    super(code, status, message);
  }
}

/** 403: the caller is known but may not do this. */
export class ForbiddenError extends TokenGateError {
  override readonly name = 'ForbiddenError';
  constructor(code: TokenGateErrorCode, message: string) {
    super(code, 403, message);
  }
}

/** 400: an input failed validation; the message names the field. */
export class ValidationError extends TokenGateError {
  override readonly name = 'ValidationError';
  /** The field (or option) that failed, e.g. `name` or `expiresInDays`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super('VALIDATION_FAILED', 400, message);
    this.field = field;
  }
}

/** 404: no such token, or one the caller may not see (indistinguishable on purpose). */
export class NotFoundError extends TokenGateError {
  override readonly name = 'NotFoundError';
  constructor(message = 'No such token.') {
    super('TOKEN_NOT_FOUND', 404, message);
  }
}

/** 429: too many failed attempts from this address or against this token. */
export class TooManyAttemptsError extends TokenGateError {
  override readonly name = 'TooManyAttemptsError';
  constructor(retryAfter: number) {
    super('TOO_MANY_ATTEMPTS', 429, 'Too many failed authentication attempts. Try again later.', {
      retryAfter,
    });
  }
}

/** 503: the token store (or another backend) failed or timed out. Fail closed. */
export class StoreError extends TokenGateError {
  override readonly name = 'StoreError';
  constructor(message = 'The token store is unavailable. Try again later.', options?: ErrorOptions) {
    super('STORE_UNAVAILABLE', 503, message, { ...options, retryAfter: 1 });
  }
}

/** 503: a backend other than the store (Bitbucket, the verifier pool) failed or is saturated. */
export class UnavailableError extends TokenGateError {
  override readonly name = 'UnavailableError';
  constructor(code: 'UPSTREAM_UNAVAILABLE' | 'BUSY', message: string, options?: ErrorOptions) {
    super(code, 503, message, { ...options, retryAfter: 1 });
  }
}

/** True for errors of this library (any subclass). */
export function isTokenGateError(err: unknown): err is TokenGateError {
  return err instanceof TokenGateError;
}
