import { ConflictError } from '../errors.js';
import type { EventListener } from '../events.js';
import type { TokenRecord } from '../model.js';
import type { TokenStore } from '../stores/token-store.js';
import { tombstoneOf } from '../tokens/tombstone.js';
import type { UpstreamHook } from '../tokens/upstream-hook.js';
import { attachUpstream, bitbucketAccessTokens } from '../upstream/bitbucket-access-tokens.js';
import type { Env } from './environment.js';
import { CliError, EXIT } from './exit-codes.js';

/** What `revoke` and `revoke-user` do with the Bitbucket access token behind a token. */
export interface CliUpstream {
  hook: UpstreamHook;
  close(): void;
}

function encryptionKeys(text: string): Array<{ id: string; key: string }> {
  return text.split(',').map((entry) => {
    const colon = entry.indexOf(':');
    if (colon < 1)
      throw new CliError(EXIT.CONFIG, 'ENCRYPTION_KEYS must be id:base64key,… (the proxies’ 32-byte keys).');
    return { id: entry.slice(0, colon).trim(), key: entry.slice(colon + 1).trim() };
  });
}

/**
 * Access-token mode for the revoking commands. A token backed by a Bitbucket HTTP access token
 * must take that token with it, or it lives on in Bitbucket:
 * - with `ENCRYPTION_KEYS` and `BITBUCKET_URL` (and `BITBUCKET_ADMIN_TOKEN` when the proxies
 *   have one), the Bitbucket token is deleted at once, as a proxy would; a failed deletion
 *   leaves a tombstone that the proxies retry;
 * - without them, the revoked record is left as a tombstone (already expired, never usable),
 *   and the proxies' expiry sweep deletes the Bitbucket token within a minute.
 */
export function cliUpstream(
  env: Env,
  store: TokenStore,
  onEvent: EventListener,
  note: (text: string) => void,
): CliUpstream {
  const keys = env['ENCRYPTION_KEYS'];
  if (keys) {
    const baseUrl = env['BITBUCKET_URL'];
    if (!baseUrl)
      throw new CliError(
        EXIT.CONFIG,
        'ENCRYPTION_KEYS is set: set BITBUCKET_URL too, so Bitbucket access tokens can be deleted.',
      );
    let attached: ReturnType<typeof attachUpstream>;
    try {
      const mode = bitbucketAccessTokens({
        baseUrl,
        encryptionKeys: encryptionKeys(keys),
        ...(env['BITBUCKET_ADMIN_TOKEN'] ? { adminToken: env['BITBUCKET_ADMIN_TOKEN'] } : {}),
      });
      attached = attachUpstream(mode, {
        store,
        storeTimeoutMs: 5_000,
        emit: onEvent,
        onEvent,
        sweep: false,
      });
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(EXIT.CONFIG, (err as Error).message);
    }
    return { hook: attached.hook, close: () => attached.close() };
  }
  const hook: UpstreamHook = {
    acquire: async () => {
      throw new ConflictError('The command line does not create Bitbucket access tokens.');
    },
    release: async (record: TokenRecord) => {
      if (store.expiringBetween === undefined) {
        note(
          `${record.id} was backed by a Bitbucket access token that this store cannot hand to the proxies: ` +
            'set ENCRYPTION_KEYS and BITBUCKET_URL and revoke again, or delete it in Bitbucket.',
        );
        return;
      }
      await store.put(tombstoneOf(record, Date.now()));
      note(
        `${record.id} was backed by a Bitbucket access token: the proxies delete it within a minute ` +
          '(set ENCRYPTION_KEYS and BITBUCKET_URL to delete it here at once).',
      );
    },
  };
  return { hook, close: () => {} };
}
