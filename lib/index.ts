export { type BitbucketGroupsOptions, bitbucketGroups } from './bitbucket/groups.js';
export {
  type BitbucketLoginOptions,
  type BitbucketPasswordVerifierOptions,
  type BitbucketUser,
  bitbucketLogin,
  bitbucketPasswordVerifier,
  type PasswordVerifier,
} from './bitbucket/login.js';
export {
  type AuthenticationCode,
  AuthenticationError,
  type BadRequestCode,
  BadRequestError,
  ConflictError,
  type ForbiddenCode,
  ForbiddenError,
  GatewayError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  type RefusalNeed,
  StoreError,
  TokenGateError,
  type TokenGateErrorCode,
  TooManyAttemptsError,
  type UnavailableCode,
  UnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
} from './errors.js';
export type {
  AuditEvent,
  AuthDeniedEvent,
  AuthSucceededEvent,
  EventListener,
  TokenChangedEvent,
  TokenExchangedEvent,
  TokenExchangeRefusedEvent,
  TokenExpiryEvent,
  TokenLeakedEvent,
  TokenRotatedEvent,
  TokenTamperedEvent,
  UpstreamTokenEvent,
} from './events.js';
export type { ClaimConditions } from './federation/claim-conditions.js';
export type { FederationRule } from './federation/trust-rules.js';
export {
  createTokenGate,
  type GateHealth,
  type HealthHandlers,
  type RevocationFeedHealth,
  type StoreHealth,
  type TokenGate,
} from './gate/create-token-gate.js';
export type { Permissions, TokenGateOptions } from './gate/options.js';
export { type GroupResolver, type GroupsOption, staticGroups } from './groups/group-resolver.js';
export { sendError } from './http/respond.js';
export type { RouterOptions } from './http/router.js';
export type { RateLimitOptions } from './limits/options.js';
export { type AuthenticateTokenOptions, authenticateToken } from './middleware/authenticate-token.js';
export { type BlockPasswordAuthOptions, blockPasswordAuth } from './middleware/block-password-auth.js';
export { type ClientIpOptions, clientIp } from './middleware/client-ip.js';
export {
  type CredentialEndpointsOptions,
  refuseCredentialEndpoints,
} from './middleware/credential-endpoints.js';
export { type ExtractCredentialsOptions, extractCredentials } from './middleware/extract-credentials.js';
export { type IpAllowlistOptions, ipAllowlist } from './middleware/ip-allowlist.js';
export { type RequireGroupsOptions, requireGroups } from './middleware/require-groups.js';
export { type RequireScopeOptions, requireScope } from './middleware/require-scope.js';
export { type TokenRestrictionsOptions, tokenRestrictions } from './middleware/token-restrictions.js';
export type {
  RateLimit,
  Scope,
  TokenChanges,
  TokenInfo,
  TokenOrigin,
  TokenRecord,
  TokenRestrictions,
} from './model.js';
export { type BitbucketEmailsOptions, bitbucketEmails } from './notify/bitbucket-emails.js';
export type {
  EmailNotifyOptions,
  NotifyOptions,
  NotifyRetryOptions,
  Recipient,
  WebhookOptions,
} from './notify/options.js';
export { signWebhook } from './notify/webhook-sink.js';
export type { OAuthClient, OAuthOptions } from './oauth/options.js';
export type { MetricsOptions, MetricsRegistryLike } from './ops/metrics.js';
export { type OidcLogin, type OidcLoginOptions, oidcLogin } from './pages/logins/oidc-login.js';
export {
  type PasswordLogin,
  type PasswordLoginOptions,
  passwordLogin,
} from './pages/logins/password-login.js';
export type { LoginProvider, PagesOptions } from './pages/options.js';
export type { SessionOptions } from './pages/session.js';
export type { AuthContext } from './request/auth-context.js';
export type { PushProtectionOptions } from './scanning/push-protection.js';
export type { RevocationEndpointOptions } from './scanning/revocation-options.js';
export { type CopyTokensOptions, type CopyTokensResult, copyTokens } from './stores/copy-tokens.js';
export { MemoryTokenStore, type MemoryTokenStoreOptions } from './stores/memory-token-store.js';
export {
  type OpenedTokenStore,
  type OpenTokenStoreOptions,
  openTokenStore,
  StoreMissingError,
} from './stores/open-token-store.js';
export {
  type PgPoolClientLike,
  type PgPoolLike,
  type PgResultLike,
  type PostgresSchemaOptions,
  PostgresTokenStore,
  type PostgresTokenStoreOptions,
} from './stores/postgres-token-store.js';
export {
  type RedisClientLike,
  type RedisSubscriberLike,
  RedisTokenStore,
  type RedisTokenStoreOptions,
} from './stores/redis-token-store.js';
export {
  type SqliteDatabaseLike,
  type SqliteStatementLike,
  SqliteTokenStore,
  type SqliteTokenStoreOptions,
} from './stores/sqlite-token-store.js';
export {
  type CountLimit,
  type RevocationListener,
  type TokenQuery,
  type TokenSearchPage,
  type TokenStore,
  userGroup,
  type WindowCount,
} from './stores/token-store.js';
export type { ThrottleOptions } from './throttle/failure-throttle.js';
export type { LoginThrottleOptions } from './throttle/login-throttle.js';
export type { ExpiryPolicy } from './tokens/expiry-policy.js';
export {
  type BcryptHasherOptions,
  bcryptHasher,
  type Sha256HasherOptions,
  sha256Hasher,
  type TokenHasher,
} from './tokens/hashers.js';
export type { ReminderOptions } from './tokens/reminders.js';
export type { RestrictionsInput } from './tokens/restrictions.js';
export {
  type ChangeContext,
  type CopyOptions,
  type CreatedToken,
  type CreateTokenInput,
  type RotateOptions,
  type TokenIdentity,
  type TokenPage,
  TokenService,
  type TokenServiceOptions,
  type TokenUpdate,
} from './tokens/service.js';
export type { UpstreamCredentials } from './tokens/upstream-hook.js';
export type { CacheOptions } from './tokens/verifier.js';
export {
  type BitbucketAccessTokensOptions,
  type BitbucketPermission,
  bitbucketAccessTokens,
  type EncryptionKey,
  type RetryOptions,
  type ScopePermissions,
  type UpstreamMode,
} from './upstream/bitbucket-access-tokens.js';
export {
  type ForwardIdentityOptions,
  forwardIdentity,
  type IdentityJwtOptions,
} from './upstream/forward-identity.js';
