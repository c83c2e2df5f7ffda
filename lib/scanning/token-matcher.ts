import { parseToken, TOKEN_BODY_LENGTH } from '../tokens/format.js';

/**
 * Finds our tokens in a byte stream given in chunks of any size: the prefix, `_`, 60 base62
 * characters and a checksum that holds. A string whose checksum fails is not a token, so every
 * hit is one of ours (or was). State is carried across chunk boundaries: the last few bytes of
 * a chunk are kept and looked at again with the start of the next.
 */
export class TokenMatcher {
  readonly #prefix: string;
  readonly #needle: Buffer;
  /** Bytes a whole token takes: where a candidate may still be completed by the next chunk. */
  readonly #span: number;
  readonly #onToken: (token: string) => void;
  #carry: Buffer = Buffer.alloc(0);

  constructor(prefix: string, onToken: (token: string) => void) {
    this.#prefix = prefix;
    this.#needle = Buffer.from(`${prefix}_`, 'latin1');
    this.#span = this.#needle.length + TOKEN_BODY_LENGTH;
    this.#onToken = onToken;
  }

  /** Looks at the next bytes of the stream. */
  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const carry = this.#carry;
    if (carry.length > 0) {
      // Candidates that start in the carried tail: joined with just enough of this chunk.
      const joint = Buffer.concat([carry, chunk.subarray(0, this.#span - 1)]);
      this.#search(joint, carry.length);
    }
    this.#search(chunk, chunk.length);
    const keep = Math.min(this.#span - 1, chunk.length);
    const tail =
      keep === this.#span - 1 ? chunk.subarray(chunk.length - keep) : Buffer.concat([carry, chunk]);
    this.#carry = Buffer.from(tail.subarray(Math.max(0, tail.length - (this.#span - 1))));
  }

  /** The stream was interrupted (a new object, a copy in a delta): nothing continues across it. */
  reset(): void {
    this.#carry = Buffer.alloc(0);
  }

  /**
   * Checks a run of bytes that may be a token's body whose prefix came from elsewhere (a delta
   * that copies `bbt_` from the old version of a line and inserts the new characters).
   */
  checkBareBody(body: Buffer): void {
    if (body.length < TOKEN_BODY_LENGTH) return;
    this.#check(`${this.#prefix}_${body.toString('latin1', 0, TOKEN_BODY_LENGTH)}`);
  }

  /** Candidates of `data` that start before `startsBefore` and end within `data`. */
  #search(data: Buffer, startsBefore: number): void {
    let at = data.indexOf(this.#needle);
    while (at >= 0 && at < startsBefore) {
      if (at + this.#span <= data.length) this.#check(data.toString('latin1', at, at + this.#span));
      at = data.indexOf(this.#needle, at + 1);
    }
  }

  #check(candidate: string): void {
    if (parseToken(candidate, this.#prefix) !== null) this.#onToken(candidate);
  }
}
