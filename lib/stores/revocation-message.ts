/**
 * What a revocation feed accepts from the wire. Anyone who may `NOTIFY` on the database or
 * `PUBLISH` on Redis can write to the channel, so a message only ever names one token id
 * (11 base62 characters, the shape `lib/tokens/format.ts` gives ids): the receiver drops that
 * id's cache entry and reads the record again. Anything else, `'*'` above all, is dropped: only
 * the store itself says "drop everything" (after its own reconnect), never a message.
 */
const TOKEN_ID = /^[0-9A-Za-z]{11}$/;

/** The token id a feed message names, or undefined for anything that is not one. */
export function revokedIdOf(payload: unknown): string | undefined {
  return typeof payload === 'string' && TOKEN_ID.test(payload) ? payload : undefined;
}
