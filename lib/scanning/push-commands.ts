/**
 * The command section of a `git-receive-pack` request: pkt-lines (4 hex digits of length, then
 * the payload; `0000` is a flush) naming the ref updates, the first one carrying the client's
 * capabilities after a NUL. Shallow lines and push certificates may come first, push options
 * after the flush when negotiated. See gitprotocol-pack(5), "Reference Update Request".
 */

/** One ref update of a push. */
export interface RefUpdate {
  oldOid: string;
  newOid: string;
  ref: string;
}

// As git's receive-pack reads them: hex in either case, and the ref name is the rest of the line
// (a name git later refuses still has its pack stored first).
const COMMAND = /^([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (.+)$/i;
/** Refs remembered for the report; a push naming more is refused as a whole (it still gets an answer). */
export const MAX_REFS = 50_000;

export class PushCommands {
  readonly updates: RefUpdate[] = [];
  readonly capabilities = new Set<string>();
  #sections = 0;

  /**
   * Reads pkt-lines from `data` at `offset`; answers the offset after the last whole line it
   * read, and whether the section (commands, then push options when negotiated) is complete.
   */
  read(data: Buffer, offset: number): { offset: number; done: boolean } {
    let at = offset;
    while (data.length - at >= 4) {
      const length = Number.parseInt(data.toString('latin1', at, at + 4), 16);
      if (!/^[0-9a-f]{4}$/i.test(data.toString('latin1', at, at + 4)) || (length > 0 && length < 4))
        throw new Error('malformed pkt-line in the push commands');
      if (length === 0) {
        at += 4;
        this.#sections++;
        if (this.#sections === 2 || !this.capabilities.has('push-options')) return { offset: at, done: true };
        continue;
      }
      if (data.length - at < length) break;
      if (this.#sections === 0) this.#line(data.toString('utf8', at + 4, at + length));
      at += length;
    }
    return { offset: at, done: false };
  }

  /** True when every update deletes a ref: git then sends no pack. */
  get deletesOnly(): boolean {
    return this.updates.every((u) => /^0+$/.test(u.newOid));
  }

  /** The hash the repository uses (`object-format` capability): its length in bytes. */
  get hashLength(): number {
    return this.capabilities.has('object-format=sha256') ? 32 : 20;
  }

  #line(raw: string): void {
    let line = raw.endsWith('\n') ? raw.slice(0, -1) : raw;
    const nul = line.indexOf('\0');
    if (nul >= 0) {
      for (const capability of line.slice(nul + 1).split(' '))
        if (capability !== '') this.capabilities.add(capability);
      line = line.slice(0, nul);
    }
    const command = COMMAND.exec(line);
    if (command === null) return; // shallow lines, push-certificate headers and signature
    if (this.updates.length >= MAX_REFS) throw new Error(`a push may update at most ${MAX_REFS} refs`);
    this.updates.push({ oldOid: command[1]!, newOid: command[2]!, ref: command[3]! });
  }
}
