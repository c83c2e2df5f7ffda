export {
  AuthenticationError,
  ForbiddenError,
  GatewayError,
  isTokenGateError,
  NotFoundError,
  StoreError,
  TokenGateError,
  type TokenGateErrorCode,
  TooManyAttemptsError,
  UnavailableError,
  ValidationError,
} from './errors.js';
export type {
  AuditEvent,
  AuthDeniedEvent,
  AuthSucceededEvent,
  EventListener,
  TokenChangedEvent,
} from './events.js';
export { createTokenGate, type Permissions, type TokenGate, type TokenGateOptions } from './gate.js';
export { type BitbucketGroupsOptions, bitbucketGroups } from './groups/bitbucket-groups.js';
export { type GroupResolver, type GroupsOption, staticGroups } from './groups/group-resolver.js';
export { type BitbucketLoginOptions, bitbucketLogin } from './http/bitbucket-login.js';
export { sendError } from './http/respond.js';
export type { RouterOptions } from './http/router.js';
export type { AuthContext } from './middleware/auth-context.js';
export { type AuthenticateTokenOptions, authenticateToken } from './middleware/authenticate-token.js';
export { type BlockPasswordAuthOptions, blockPasswordAuth } from './middleware/block-password-auth.js';
export { type ClientIpOptions, clientIp } from './middleware/client-ip.js';
export { type ExtractCredentialsOptions, extractCredentials } from './middleware/extract-credentials.js';
export {
  type ForwardIdentityOptions,
  forwardIdentity,
  type IdentityJwtOptions,
} from './middleware/forward-identity.js';
export { type IpAllowlistOptions, ipAllowlist } from './middleware/ip-allowlist.js';
export { type RequireGroupsOptions, requireGroups } from './middleware/require-groups.js';
export { type RequireScopeOptions, requireScope } from './middleware/require-scope.js';
export type { Scope, TokenInfo } from './model.js';
export type { ThrottleOptions } from './request/throttle.js';
export { MemoryTokenStore, type MemoryTokenStoreOptions } from './stores/memory-token-store.js';
export { RedisTokenStore, type RedisTokenStoreOptions } from './stores/redis-token-store.js';
export type {
  RevocationListener,
  TokenQuery,
  TokenRecord,
  TokenSearchPage,
  TokenStore,
} from './stores/token-store.js';
export type { CacheOptions } from './tokens/cache.js';
export {
  type BcryptHasherOptions,
  bcryptHasher,
  type Sha256HasherOptions,
  sha256Hasher,
  type TokenHasher,
} from './tokens/hashers.js';
export {
  type CreateTokenInput,
  type ExpiryPolicy,
  type TokenPage,
  TokenService,
  type VerifyOutcome,
} from './tokens/service.js';
