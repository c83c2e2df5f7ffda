import { UnavailableError } from '../errors.js';

/**
 * Bounds concurrent slow work (bcrypt checks). A full queue answers BUSY at once, so a flood of
 * wrong tokens cannot queue up behind good ones for ever.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly limit: number,
    private readonly maxQueue: number,
  ) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) {
      if (this.waiting.length >= this.maxQueue) {
        throw new UnavailableError('BUSY', 'Too many token checks in progress. Try again shortly.');
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
