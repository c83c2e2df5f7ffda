/**
 * When `revokeAll` last ran for a user, kept in the store's keyed values so that credentials
 * the store does not hold as tokens (OAuth refresh tokens) issued before it die with the user's
 * tokens, on every instance and from the CLI alike.
 */
export const revokedAllKey = (user: string) => `revoked-all:${user.toLowerCase()}`;

/** How long the mark is kept: longer than any refresh token may live (`gate.oauth()` caps them at 365 days). */
export const REVOKED_ALL_KEEP_MS = 366 * 86_400_000;
