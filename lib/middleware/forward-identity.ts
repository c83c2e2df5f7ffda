/**
 * `forwardIdentity` lives in `lib/upstream/` now, beside the access-token mode; this path keeps
 * imports written against the old one working (the package root exports it either way).
 */
export {
  FORWARD_IDENTITY_OPTIONS,
  type ForwardIdentityOptions,
  forwardIdentity,
  type IdentityJwtOptions,
} from '../upstream/forward-identity.js';
