/**
 * File paths of the pushed blobs, from the trees in the same pack: each tree entry links a
 * child id to its name and parent tree. Bounded: past `limit` entries no more are kept, and
 * paths of later blobs are unknown (reports then say "where known").
 */
export class ObjectPaths {
  readonly #parents = new Map<string, { name: string; parent: string }>();
  readonly #limit: number;

  constructor(limit = 200_000) {
    this.#limit = limit;
  }

  /** Records the entries of a tree object (`<mode> <name>\0<binary id>` each). */
  addTree(treeOid: string, data: Buffer, hashLength: number): void {
    let at = 0;
    while (at < data.length && this.#parents.size < this.#limit) {
      const space = data.indexOf(0x20, at);
      const nul = data.indexOf(0, space);
      if (space < 0 || nul < 0 || nul + 1 + hashLength > data.length) return;
      const name = data.toString('utf8', space + 1, nul);
      const child = data.toString('hex', nul + 1, nul + 1 + hashLength);
      if (!this.#parents.has(child)) this.#parents.set(child, { name, parent: treeOid });
      at = nul + 1 + hashLength;
    }
  }

  /** `dir/file.txt` for a blob whose trees were pushed too, else undefined. */
  pathOf(oid: string): string | undefined {
    const names: string[] = [];
    let current = oid;
    for (let depth = 0; depth < 256; depth++) {
      const entry = this.#parents.get(current);
      if (entry === undefined) break;
      names.unshift(entry.name);
      current = entry.parent;
    }
    return names.length === 0 ? undefined : names.join('/');
  }
}
