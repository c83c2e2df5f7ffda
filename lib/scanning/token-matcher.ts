import { assembleToken, ID_LENGTH, parseToken, SECRET_LENGTH, TOKEN_BODY_LENGTH } from '../tokens/format.js';

/**
 * Finds our tokens in a byte stream given in chunks of any size: the prefix, `_`, 60 base62
 * characters and a checksum that holds. A string whose checksum fails is not a token, so every
 * hit is one of ours (or was). State is carried across chunk boundaries: the last few bytes of
 * a chunk are kept and looked at again with the start of the next.
 */
const BASE62 = /^[0-9A-Za-z]+$/;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const isBase62 = (byte: number) =>
  (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);

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
   * that copies `bbt_` from the old version of a line and inserts the new characters, as when a
   * rotated token is written over the old one). The copies around the run may also have taken
   * characters equal to the old token's:
   * - its first character (1 time in 62): each of the 62 is tried in its place;
   * - the checksum's last characters, when a copy follows the run (1 time in 62): with id and
   *   secret whole the token is rebuilt, and the checksum characters the run holds must agree.
   * A whole checksum tells a token apart from any other text, as everywhere else.
   * `runEnded`: the literal run ends with `body` (a copy follows).
   */
  checkBareBody(body: Buffer, runEnded = false): void {
    let run = 0;
    while (run < body.length && run < TOKEN_BODY_LENGTH && isBase62(body[run]!)) run++;
    const text = body.toString('latin1', 0, run);
    if (run === TOKEN_BODY_LENGTH) {
      this.#check(`${this.#prefix}_${text}`);
      return;
    }
    // Only where the base62 characters end (before other data, or with the run): the token's
    // end; and only with id and secret there, but for a copied first character.
    if ((run === body.length && !runEnded) || run < ID_LENGTH + SECRET_LENGTH) return;
    const copyFollows = run === body.length;
    for (const head of ['', ...ALPHABET]) {
      const known = head + text;
      if (known.length === TOKEN_BODY_LENGTH) this.#check(`${this.#prefix}_${known}`);
      // A guessed first character (62 guesses) needs three checksum characters to agree, not one.
      else if (copyFollows && known.length >= ID_LENGTH + SECRET_LENGTH + (head === '' ? 1 : 3)) {
        const id = known.slice(0, ID_LENGTH);
        const rebuilt = assembleToken(this.#prefix, id, known.slice(ID_LENGTH, ID_LENGTH + SECRET_LENGTH));
        if (rebuilt.startsWith(known, this.#needle.length)) this.#onToken(rebuilt);
      }
    }
  }

  /** Bytes a token takes but for its last character: how much of a run's end to keep. */
  get tailLength(): number {
    return this.#span - 1;
  }

  /**
   * Checks the end of a run of bytes for a token cut short by the next copy of a delta: git's
   * delta extends a copy backwards while bytes match, so the last characters of an inserted
   * token can come from the old version. With its id and secret whole (54 characters after the
   * prefix) the token is rebuilt; only the store can say whether it is one.
   */
  checkTruncated(tail: Buffer): void {
    const at = tail.lastIndexOf(this.#needle);
    if (at < 0) return;
    const body = tail.toString('latin1', at + this.#needle.length);
    if (body.length < ID_LENGTH + SECRET_LENGTH || body.length >= TOKEN_BODY_LENGTH || !BASE62.test(body))
      return;
    this.#onToken(
      assembleToken(this.#prefix, body.slice(0, ID_LENGTH), body.slice(ID_LENGTH, ID_LENGTH + SECRET_LENGTH)),
    );
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
