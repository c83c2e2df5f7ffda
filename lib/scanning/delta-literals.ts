import { TOKEN_BODY_LENGTH } from '../tokens/format.js';
import type { TokenMatcher } from './token-matcher.js';

/**
 * Reads a git delta (the inflated data of an ofs- or ref-delta object) as it streams and hands
 * only its literal data to the matcher: the insert instructions' bytes, consecutive inserts as
 * one run (git splits long literals into 127-byte inserts). A copy instruction ends a run; the
 * next run's first characters are also tried as a token body whose prefix was copied. Nothing
 * is resolved against the base object.
 */
export class DeltaLiterals {
  readonly #matcher: TokenMatcher;
  /** 0, 1: the two size varints; 2: an instruction byte; 3: copy operand bytes; 4: insert bytes. */
  #state = 0;
  #remaining = 0;
  #runStart: Buffer[] = [];
  #runStartLength = 0;
  #afterCopy = false;
  /** The end of the current run of literal bytes. */
  #tail: Buffer = Buffer.alloc(0);

  constructor(matcher: TokenMatcher) {
    this.#matcher = matcher;
    matcher.reset();
  }

  write(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      switch (this.#state) {
        case 0:
        case 1:
          // Size varints: continue while the high bit is set.
          if ((chunk[i++]! & 0x80) === 0) this.#state++;
          break;
        case 2: {
          const op = chunk[i++]!;
          if (op & 0x80) {
            this.#remaining = popcount(op & 0x7f);
            this.#state = this.#remaining === 0 ? 2 : 3;
            this.#endRun();
          } else if (op === 0) {
            throw new Error('delta instruction 0 is reserved');
          } else {
            this.#remaining = op;
            this.#state = 4;
          }
          break;
        }
        case 3: {
          const take = Math.min(this.#remaining, chunk.length - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = 2;
          break;
        }
        default: {
          const take = Math.min(this.#remaining, chunk.length - i);
          const literal = chunk.subarray(i, i + take);
          i += take;
          this.#remaining -= take;
          this.#matcher.write(literal);
          this.#keepTail(literal);
          if (this.#afterCopy) this.#collectRunStart(literal);
          if (this.#remaining === 0) this.#state = 2;
        }
      }
    }
  }

  /** The delta ended: it must end between instructions. */
  end(): void {
    if (this.#state !== 2) throw new Error('delta data ends inside an instruction');
    this.#endRun();
  }

  #endRun(): void {
    if (this.#tail.length > 0) this.#matcher.checkTruncated(this.#tail);
    // A short run after a copy: its start may still be a token body whose head was copied.
    if (this.#afterCopy && this.#runStartLength > 0)
      this.#matcher.checkBareBody(Buffer.concat(this.#runStart), true);
    this.#tail = Buffer.alloc(0);
    this.#matcher.reset();
    this.#runStart = [];
    this.#runStartLength = 0;
    this.#afterCopy = true;
  }

  #keepTail(literal: Buffer): void {
    const keep = this.#matcher.tailLength;
    const joined = literal.length >= keep ? literal : Buffer.concat([this.#tail, literal]);
    this.#tail = Buffer.from(joined.subarray(Math.max(0, joined.length - keep)));
  }

  #collectRunStart(literal: Buffer): void {
    this.#runStart.push(literal);
    this.#runStartLength += literal.length;
    if (this.#runStartLength > TOKEN_BODY_LENGTH) {
      this.#matcher.checkBareBody(Buffer.concat(this.#runStart));
      this.#afterCopy = false;
      this.#runStart = [];
    }
  }
}

function popcount(bits: number): number {
  let count = 0;
  for (let b = bits; b !== 0; b >>= 1) count += b & 1;
  return count;
}
