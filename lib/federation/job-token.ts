import { decodeJwt, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import type { IssuerKeys } from './issuer-keys.js';
import type { CompiledRule } from './trust-rules.js';

/**
 * Why a job token was refused, for the audit log only: the client hears `invalid_request` whatever
 * the reason, so a prober learns nothing about which check failed.
 */
export type RefusalReason =
  | 'malformed'
  | 'algorithm'
  | 'issuer'
  | 'unknown_key'
  | 'signature'
  | 'expired'
  | 'too_old'
  | 'not_yet_valid'
  | 'audience'
  | 'claims'
  | 'replayed';

/** A job token that failed a check. */
export class JobTokenRefused extends Error {
  override readonly name = 'JobTokenRefused';
  constructor(
    readonly reason: RefusalReason,
    /** The issuer the token named, when it is one of ours (never a stranger's text). */
    readonly issuer: string | null = null,
  ) {
    super(`The job token was refused: ${reason}`);
  }
}

/** A verified job token and the rule it matched. */
export interface VerifiedJobToken {
  readonly rule: CompiledRule;
  readonly claims: JWTPayload & { iss: string; sub: string; exp: number; iat: number };
  /** The part the signature covers (header.payload): what identifies a token without a `jti`. */
  readonly signedPart: string;
}

/** Asymmetric algorithms only: `none` and HMAC are never accepted, whatever the header says. */
export const JOB_TOKEN_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

/** Skew allowed on `iat` and `nbf`. */
export const CLOCK_SKEW_SECONDS = 60;
/** Oldest job token accepted, by its `iat`. */
export const MAX_TOKEN_AGE_SECONDS = 600;
const MAX_TOKEN_LENGTH = 16_384;

function reasonOf(err: unknown): RefusalReason | null {
  if (err instanceof errors.JWTExpired) return err.claim === 'iat' ? 'too_old' : 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || (err.claim === 'iat' && err.reason === 'check_failed')) return 'not_yet_valid';
    if (err.claim === 'iss') return 'issuer';
    return 'malformed';
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown_key';
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSMultipleMatchingKeys)
    return 'signature';
  if (err instanceof errors.JOSEError) return 'malformed';
  return null;
}

const audiencesOf = (aud: unknown): string[] =>
  typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a) => typeof a === 'string') : [];

/**
 * Verifies a CI job token against the trust rules: a trusted issuer named by its `iss` (the
 * only thing read before the signature is checked, and only to pick the issuer's keys), an
 * asymmetric signature by one of that issuer's keys, `exp` in the future, `iat`/`nbf` within
 * a minute's skew, at most ten minutes old, then the first rule of that issuer whose audience
 * the token's `aud` contains and whose claim conditions all hold. Throws `JobTokenRefused`, or
 * `IssuerUnavailableError` when the keys cannot be had.
 */
export async function verifyJobToken(
  jwt: string,
  rulesByIssuer: ReadonlyMap<string, readonly CompiledRule[]>,
  keys: IssuerKeys,
  now: number = Date.now(),
): Promise<VerifiedJobToken> {
  if (jwt.length > MAX_TOKEN_LENGTH || jwt.split('.').length !== 3) throw new JobTokenRefused('malformed');
  let issuer: unknown;
  try {
    decodeProtectedHeader(jwt);
    issuer = decodeJwt(jwt).iss;
  } catch {
    throw new JobTokenRefused('malformed');
  }
  const rules = typeof issuer === 'string' ? rulesByIssuer.get(issuer) : undefined;
  if (rules === undefined) throw new JobTokenRefused('issuer');
  const trusted = issuer as string;
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jwt, (header) => keys.keyFor(trusted, header), {
      issuer: trusted,
      algorithms: [...JOB_TOKEN_ALGORITHMS],
      requiredClaims: ['exp', 'iat', 'sub'],
      clockTolerance: CLOCK_SKEW_SECONDS,
      currentDate: new Date(now),
    }));
  } catch (err) {
    const reason = reasonOf(err);
    if (reason === null) throw err;
    throw new JobTokenRefused(reason, trusted);
  }
  // jose allows the skew on every claim; expiry and age are held to the second here.
  const seconds = now / 1000;
  if ((payload.exp as number) <= seconds) throw new JobTokenRefused('expired', trusted);
  if (seconds - (payload.iat as number) > MAX_TOKEN_AGE_SECONDS)
    throw new JobTokenRefused('too_old', trusted);
  if (payload.iat! > seconds + CLOCK_SKEW_SECONDS) throw new JobTokenRefused('not_yet_valid', trusted);
  if (typeof payload.sub !== 'string' || (payload.jti !== undefined && typeof payload.jti !== 'string'))
    throw new JobTokenRefused('malformed', trusted);
  const audiences = audiencesOf(payload.aud);
  const forUs = rules.filter((rule) => audiences.includes(rule.audience));
  if (forUs.length === 0) throw new JobTokenRefused('audience', trusted);
  const rule = forUs.find((candidate) => candidate.matches(payload));
  if (rule === undefined) throw new JobTokenRefused('claims', trusted);
  return {
    rule,
    claims: payload as VerifiedJobToken['claims'],
    signedPart: jwt.slice(0, jwt.lastIndexOf('.')),
  };
}
