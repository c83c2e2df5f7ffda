import { UnavailableError } from '../errors.js';

/**
 * Bounds concurrent slow work (bcrypt checks) and serves waiting work round-robin between
 * clients, so one client flooding the queue delays its own attempts, not everyone else's. A
 * full queue answers BUSY at once.
 */
export class FairQueue {
  #active = 0;
  #waiting = 0;
  /** Waiters by client; Map order is the rotation: a served client moves to the back. */
  readonly #queues = new Map<string, Array<() => void>>();

  constructor(
    readonly limit: number,
    readonly maxWaiting: number,
  ) {}

  async run<T>(client: string, work: () => Promise<T>): Promise<T> {
    if (this.#active < this.limit) {
      this.#active++;
    } else {
      if (this.#waiting >= this.maxWaiting)
        throw new UnavailableError('BUSY', 'Too many token checks in progress. Try again shortly.');
      this.#waiting++;
      await new Promise<void>((resolve) => {
        const queue = this.#queues.get(client);
        if (queue === undefined) this.#queues.set(client, [resolve]);
        else queue.push(resolve);
      });
    }
    try {
      return await work();
    } finally {
      this.#next();
    }
  }

  /** Work running and waiting, for metrics. */
  get load(): { active: number; waiting: number } {
    return { active: this.#active, waiting: this.#waiting };
  }

  #next(): void {
    const first = this.#queues.entries().next();
    if (first.done) {
      this.#active--;
      return;
    }
    const [client, queue] = first.value;
    const resolve = queue.shift()!;
    this.#queues.delete(client);
    if (queue.length > 0) this.#queues.set(client, queue);
    this.#waiting--;
    resolve();
  }
}
