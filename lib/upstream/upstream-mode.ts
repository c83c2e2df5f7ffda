import type { BitbucketPermission } from '../bitbucket/permissions.js';
import type { EventListener } from '../events.js';
import type { Scope } from '../model.js';
import type { Step } from '../request/step.js';
import type { TokenStore } from '../stores/token-store.js';
import type { UpstreamHook } from '../tokens/upstream-hook.js';
import type { RetryOptions } from './upstream-deletions.js';

// What the public factory (bitbucket-access-tokens.ts) hands the mode's code (access-token-mode.ts).

/** What Bitbucket administrators see in the user's token list: our token's id names the Bitbucket one. */
export const MINTED_TOKEN_NAME = 'express-api-tokens';

/** What the gate needs from an upstream mode, once attached to its store and listener. */
export interface AttachedUpstream {
  hook: UpstreamHook;
  /** The request-path step that replaces `forwardIdentity`. */
  requestStep: Step;
  close(): void;
}

export interface AttachContext {
  store: TokenStore;
  storeTimeoutMs: number;
  emit: EventListener;
  /** The user's listener, or undefined (request steps then skip building events). */
  onEvent: EventListener | undefined;
  now?: () => number;
  /** Run the expiry sweep (default true); the command line revokes without sweeping. */
  sweep?: boolean;
}

/** `bitbucketAccessTokens`' options, checked, with every default filled in. */
export interface AccessTokenConfig {
  baseUrl: string;
  /** The key ring, parsed and copied when the mode was made (a caller may wipe its key buffers). */
  keyRing: ReadonlyMap<string, Buffer>;
  timeoutMs: number;
  permissions: Record<Scope, readonly BitbucketPermission[]>;
  adminToken: string | undefined;
  retry: Required<RetryOptions>;
  sweepIntervalMs: number;
}
