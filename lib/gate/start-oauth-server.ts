import type { CompiledRule } from '../federation/trust-rules.js';
import type { GrantStore } from '../oauth/grant-state.js';
import type { GrantHandler } from '../oauth/grants.js';
import type { OAuthConfig } from '../oauth/options.js';
import type { OAuthDeps, OAuthServer } from '../oauth/server.js';
import type { TokenStore } from '../stores/token-store.js';

/** What `startOAuthServer` needs besides the config: the server's deps, and federation's rules. */
export interface StartOAuthDeps extends Omit<OAuthDeps, 'extraGrants' | 'emit' | 'store'> {
  store: TokenStore & GrantStore;
  emit: NonNullable<OAuthDeps['emit']>;
  /** Compiled `federation` rules; the token exchange is loaded only when there are some. */
  federation: readonly CompiledRule[];
  storeTimeoutMs: number;
}

/**
 * The OAuth server (and federation's token exchange, when rules are given), imported when
 * `gate.oauth()` is called rather than with the package: an app that never signs git in pays
 * nothing for it. The options were checked already (`oauthConfigOf`), so only an import can fail.
 */
export async function startOAuthServer(config: OAuthConfig, deps: StartOAuthDeps): Promise<OAuthServer> {
  const { federation, storeTimeoutMs, ...serverDeps } = deps;
  const [{ OAuthServer }, exchange] = await Promise.all([
    import('../oauth/server.js'),
    federation.length === 0 ? undefined : import('../federation/token-exchange.js'),
  ]);
  const extraGrants = new Map<string, GrantHandler>();
  if (exchange !== undefined)
    extraGrants.set(
      exchange.TOKEN_EXCHANGE_GRANT,
      exchange.createTokenExchangeGrant({
        tokens: deps.tokens,
        store: deps.store,
        rules: federation,
        emit: deps.emit,
        storeTimeoutMs,
      }),
    );
  return new OAuthServer(config, { ...serverDeps, extraGrants });
}
