import { boolean, fail, func, integer, object, type Shape } from '../internal/options.js';
import type { TokenStore } from './token-store.js';

/**
 * Options of `copyTokens`.
 * @example
 * const options: CopyTokensOptions = {
 *   overwrite: false,
 *   onProgress: ({ copied, skipped }) => console.log(copied, skipped),
 * };
 * await copyTokens(from, to, options);
 */
export interface CopyTokensOptions {
  /** Records read per page of `from.search`. Default 500. */
  pageSize?: number;
  /**
   * Overwrite tokens the target already holds. Default true (a first copy). Pass false for a
   * catch-up copy after the switch, so changes made in the new store since are kept. Either way,
   * a token that an earlier copy put into the target and the target has since revoked (or let
   * expire) is never copied back.
   */
  overwrite?: boolean;
  /** Called after each page with the counts so far. Default: none. */
  onProgress?: (progress: CopyTokensResult) => void;
}

/**
 * What `copyTokens` did.
 * @example
 * const { copied, skipped }: CopyTokensResult = await copyTokens(from, to, { overwrite: false });
 */
export interface CopyTokensResult {
  /** Records written to the target. */
  copied: number;
  /**
   * Records not written: the target already held them (with `overwrite: false`), or an earlier
   * copy put them there and the target has revoked them since (or they expired there).
   */
  skipped: number;
}

/**
 * How long the target remembers that a copy put a token there (a claim per token, `copied:<id>`):
 * a catch-up copy run within this time never brings back a token the target revoked. 30 days.
 */
export const COPY_MARK_TTL_MS = 30 * 86_400_000;

const OPTIONS: Shape<CopyTokensOptions> = {
  pageSize: integer(1, 10_000),
  overwrite: boolean,
  onProgress: func,
};

/**
 * Copies every live token record from one store to another, as stored: the hash, owner,
 * name, scope, times, last use, restrictions and the sealed upstream credential. No secret is
 * needed and none changes, so tokens keep working on the new store without their owners
 * noticing, provided the gate keeps the same `pepper` (and hasher). Pages through
 * `from.search` newest first; writes with `to.put`. The target remembers each id it was given
 * (`to.claim('copied:<id>')`, kept `COPY_MARK_TTL_MS`), so a token revoked in the target is never
 * copied back by a later run. Revocations made on the old store after a record was copied are
 * not carried over: see docs/stores.md for the switch-over steps.
 * @example
 * const { copied } = await copyTokens(
 *   new RedisTokenStore({ redis }),
 *   new SqliteTokenStore({ path: 'tokens.db' }),
 * );
 */
export async function copyTokens(
  from: TokenStore,
  to: TokenStore,
  options: Readonly<CopyTokensOptions> = {},
): Promise<CopyTokensResult> {
  object(OPTIONS)(options, '');
  for (const [name, store] of [
    ['from', from],
    ['to', to],
  ] as const) {
    if (
      typeof store?.search !== 'function' ||
      typeof store.put !== 'function' ||
      typeof store.get !== 'function'
    )
      fail(name, 'must be a TokenStore');
  }
  // The target remembers what was copied into it (claims), so its revocations stick.
  if (typeof to.claim !== 'function')
    fail(
      'to',
      'must implement claim(): it remembers copied tokens, so a token it revokes is never copied back',
    );
  const claim = to.claim.bind(to);
  if (from === to) fail('to', 'must be another store than `from`');
  const limit = options.pageSize ?? 500;
  const overwrite = options.overwrite ?? true;
  const result: CopyTokensResult = { copied: 0, skipped: 0 };
  const seen = new Set<string>();
  let start: number | undefined = 0;
  while (start !== undefined) {
    const page = await from.search({ start, limit });
    for (const record of page.values) {
      // Tokens created while copying shift later pages: a record met twice is written once.
      if (seen.has(record.id)) continue;
      seen.add(record.id);
      const held = (await to.get(record.id)) !== null;
      // First copy into this target: the claim is won, and marks the id as copied. Lost, and
      // the target does not hold the token: it was copied before and revoked (or expired) there.
      const firstCopy = await claim(`copied:${record.id}`, COPY_MARK_TTL_MS);
      if ((held && !overwrite) || (!held && !firstCopy)) {
        result.skipped++;
        continue;
      }
      await to.put(record);
      result.copied++;
    }
    options.onProgress?.({ ...result });
    start = page.isLastPage ? undefined : page.nextStart;
  }
  return result;
}
