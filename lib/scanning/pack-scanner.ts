import { createHash, type Hash } from 'node:crypto';
import { Writable } from 'node:stream';
import { createInflate, type Inflate, inflateSync } from 'node:zlib';
import { DeltaLiterals } from './delta-literals.js';
import { ObjectPaths } from './object-paths.js';
import { PushCommands, type RefUpdate } from './push-commands.js';
import { TokenMatcher } from './token-matcher.js';

/** Where a token was found: the object, and its file path when the pack says it. */
export interface TokenPlace {
  /** `blob` (a file), `commit` (a commit message or header), `tag`, or `delta` (a changed file, unresolved). */
  kind: 'blob' | 'commit' | 'tag' | 'delta';
  /** The object's id (hex), for whole objects. */
  oid?: string;
  /** The file path, for a blob whose tree was pushed with it. */
  path?: string;
}

const TYPES = ['', 'commit', 'tree', 'blob', 'tag', '', 'ofs-delta', 'ref-delta'] as const;
/** Objects whose inflated data may take this much are inflated at once; larger ones stream. */
const WHOLE_LIMIT = 1 << 20;
/** Trees larger than this are not read for paths. */
const TREE_LIMIT = 4 << 20;

interface ObjectSink {
  write(data: Buffer): void;
  end(): void;
}

/**
 * Reads the body of a `git-receive-pack` request as it streams (as a Writable): the ref
 * updates, then the pack. Every object is inflated in turn, with bounded memory: small ones at
 * once, large ones through a streaming inflater. Blobs, commits and tags are scanned whole,
 * deltas only for their literal data; trees are read for file paths. Nothing is resolved or
 * stored. `findings` maps each token found (checksum valid) to where it was first seen. A
 * malformed or incomplete body fails the stream (the caller refuses the push: fail closed).
 */
export class PackScanner extends Writable {
  readonly commands = new PushCommands();
  readonly findings = new Map<string, TokenPlace>();
  readonly #paths = new ObjectPaths();
  readonly #matcher: TokenMatcher;
  readonly #onToken: (token: string) => void;
  #state: 'commands' | 'header' | 'object' | 'stream' | 'trailer' | 'done' = 'commands';
  #window: Buffer = Buffer.alloc(0);
  #objectsLeft = 0;
  /** Tokens found in the object being read (their place is known once it ends). */
  #pending: string[] = [];
  // The object being streamed.
  #inflater: Inflate | undefined;
  #fed = 0;
  #produced = 0;
  #size = 0;
  #sink: ObjectSink | undefined;
  #streamError: Error | undefined;

  /** `onToken` hears each distinct token the moment it is found (to start judging it early). */
  constructor(prefix: string, onToken: (token: string) => void = () => {}) {
    super({ highWaterMark: 1 << 16 });
    this.#onToken = onToken;
    this.#matcher = new TokenMatcher(prefix, (token) => this.#pending.push(token));
  }

  /** The ref updates of the push. */
  get updates(): readonly RefUpdate[] {
    return this.commands.updates;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#consume(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const complete = this.#state === 'done' || (this.#state === 'commands' && this.#emptyRequest());
    callback(complete ? null : new Error('the push ended before its pack was complete'));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#inflater?.destroy();
    callback(error);
  }

  #emptyRequest(): boolean {
    return this.#window.length === 0 && this.commands.updates.length === 0 && this.#objectsLeft === 0;
  }

  async #consume(chunk: Buffer): Promise<void> {
    let data = this.#window.length === 0 ? chunk : Buffer.concat([this.#window, chunk]);
    this.#window = Buffer.alloc(0);
    while (data.length > 0) {
      if (this.#state === 'stream') {
        data = await this.#feed(data);
        continue;
      }
      const used = this.#step(data);
      if (used < 0) {
        this.#window = Buffer.from(data); // too short to go on: wait for more
        return;
      }
      data = data.subarray(used);
    }
  }

  /** One parsing step on `data`: the bytes it used, or -1 when it needs more. */
  #step(data: Buffer): number {
    switch (this.#state) {
      case 'commands': {
        const { offset, done } = this.commands.read(data, 0);
        if (done) this.#state = this.commands.deletesOnly ? 'done' : 'header';
        return offset === 0 && !done ? -1 : offset;
      }
      case 'header': {
        if (data.length < 12) return -1;
        if (data.toString('latin1', 0, 4) !== 'PACK') throw new Error('the push carries no pack');
        const version = data.readUInt32BE(4);
        if (version !== 2 && version !== 3) throw new Error(`pack version ${version} is not supported`);
        this.#objectsLeft = data.readUInt32BE(8);
        this.#state = this.#objectsLeft === 0 ? 'trailer' : 'object';
        return 12;
      }
      case 'object':
        return this.#object(data);
      case 'trailer':
        if (data.length < this.commands.hashLength) return -1;
        this.#state = 'done';
        return data.length; // the pack's checksum, and nothing after it is read
      case 'done':
        // Also when no update was recognised: a pack there would reach git unscanned.
        if (data.length > 0 && this.commands.deletesOnly)
          throw new Error('a push that only deletes refs carries data');
        return data.length;
      default:
        throw new Error('unreachable');
    }
  }

  /** An object's header and, when small enough to be in `data`, its whole data. */
  #object(data: Buffer): number {
    let at = 0;
    if (data.length < 1) return -1;
    let byte = data[at++]!;
    const type = (byte >> 4) & 7;
    let size = byte & 15;
    let scale = 16;
    while (byte & 0x80) {
      if (at >= data.length) return -1;
      byte = data[at++]!;
      size += (byte & 0x7f) * scale;
      scale *= 128;
    }
    const kind = TYPES[type];
    if (kind === undefined || kind === '') throw new Error(`unknown pack object type ${type}`);
    if (kind === 'ofs-delta') {
      do {
        if (at >= data.length) return -1;
        byte = data[at++]!;
      } while (byte & 0x80);
    } else if (kind === 'ref-delta') {
      at += this.commands.hashLength;
      if (at > data.length) return -1;
    }
    if (at >= data.length) return -1;
    const sink = this.#sinkFor(kind, size);
    const rest = data.subarray(at);
    try {
      const { buffer, engine } = inflateSync(rest, {
        info: true,
        maxOutputLength: WHOLE_LIMIT,
      }) as unknown as {
        buffer: Buffer;
        engine: { bytesWritten: number };
      };
      if (buffer.length !== size) throw new Error('a pack object is not the size its header says');
      sink.write(buffer);
      this.#endObject(sink);
      return at + engine.bytesWritten;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'Z_BUF_ERROR' && code !== 'ERR_BUFFER_TOO_LARGE') throw err;
    }
    // Not all here, or large: inflate it as it streams.
    this.#matcher.reset();
    this.#pending = [];
    this.#sink = this.#sinkFor(kind, size);
    this.#size = size;
    this.#fed = 0;
    this.#produced = 0;
    this.#streamError = undefined;
    const inflater = createInflate();
    inflater.on('data', (out: Buffer) => {
      this.#produced += out.length;
      this.#sink!.write(out);
    });
    inflater.on('error', (err) => {
      this.#streamError = err;
    });
    this.#inflater = inflater;
    this.#state = 'stream';
    return at;
  }

  /** Feeds the streaming inflater; answers the bytes after the object once it ended, else nothing. */
  async #feed(data: Buffer): Promise<Buffer> {
    const inflater = this.#inflater!;
    await new Promise<void>((resolve, reject) =>
      inflater.write(data, (err) => (err ? reject(err) : resolve())),
    );
    if (this.#streamError !== undefined) throw this.#streamError;
    this.#fed += data.length;
    const unused = this.#fed - inflater.bytesWritten;
    if (unused === 0) return Buffer.alloc(0);
    if (this.#produced !== this.#size) throw new Error('a pack object is not the size its header says');
    inflater.destroy();
    this.#inflater = undefined;
    this.#state = 'object';
    this.#endObject(this.#sink!);
    return data.subarray(data.length - unused);
  }

  #endObject(sink: ObjectSink): void {
    sink.end();
    this.#objectsLeft--;
    if (this.#objectsLeft === 0) this.#state = 'trailer';
  }

  /** What reads an object's inflated data: the matcher for content, the path index for trees. */
  #sinkFor(kind: (typeof TYPES)[number], size: number): ObjectSink {
    this.#matcher.reset();
    this.#pending = [];
    if (kind === 'ofs-delta' || kind === 'ref-delta') {
      const literals = new DeltaLiterals(this.#matcher);
      return {
        write: (data) => literals.write(data),
        end: () => {
          literals.end();
          this.#place({ kind: 'delta' });
        },
      };
    }
    const hash: Hash = createHash(this.commands.hashLength === 32 ? 'sha256' : 'sha1');
    hash.update(`${kind} ${size}\0`);
    if (kind === 'tree') {
      const parts: Buffer[] = [];
      let kept = 0;
      return {
        write: (data) => {
          hash.update(data);
          kept += data.length;
          if (kept <= TREE_LIMIT) parts.push(data);
        },
        end: () => {
          if (kept <= TREE_LIMIT)
            this.#paths.addTree(hash.digest('hex'), Buffer.concat(parts), this.commands.hashLength);
        },
      };
    }
    return {
      write: (data) => {
        hash.update(data);
        this.#matcher.write(data);
      },
      end: () => this.#place({ kind: kind as 'blob' | 'commit' | 'tag', oid: hash.digest('hex') }),
    };
  }

  /** The object ended: its tokens get their place. */
  #place(place: TokenPlace): void {
    for (const token of this.#pending) {
      if (this.findings.has(token)) continue;
      this.findings.set(token, place);
      this.#onToken(token);
    }
    this.#pending = [];
  }

  /** Where a token was found, with the blob's path resolved from the pushed trees. */
  placeOf(token: string): TokenPlace | undefined {
    const place = this.findings.get(token);
    if (place?.kind !== 'blob' || place.oid === undefined) return place;
    const path = this.#paths.pathOf(place.oid);
    return path === undefined ? place : { ...place, path };
  }
}
