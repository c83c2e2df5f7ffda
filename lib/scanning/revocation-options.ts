import { integer, type Shape, validateOptions } from '../internal/options.js';

/**
 * Options of `gate.revocationEndpoint()`.
 * @example
 * app.post('/tokens/leaked', gate.revocationEndpoint({ maxRequestsPerIp: 5 }));
 */
export interface RevocationEndpointOptions {
  /** Reports one client address may send per window; more get 429. Default 10. */
  maxRequestsPerIp?: number;
  /** The rate limit's window in milliseconds. Default 60,000. */
  windowMs?: number;
  /** Largest request body in bytes; larger ones get 413. Default 1,048,576 (1,000 reports with URLs fit). */
  maxBodyBytes?: number;
}

export const REVOCATION_ENDPOINT_OPTIONS: Shape<RevocationEndpointOptions> = {
  maxRequestsPerIp: integer(1, 1_000_000),
  windowMs: integer(1_000, 86_400_000),
  maxBodyBytes: integer(1_024, 16_777_216),
};

/** Throws at `gate.revocationEndpoint()` for a bad option; the endpoint itself loads afterwards. */
export function checkRevocationEndpointOptions(options: unknown): void {
  validateOptions<RevocationEndpointOptions>(options, REVOCATION_ENDPOINT_OPTIONS);
}
