import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

/**
 * bcrypt off the event loop: a few worker threads running bcryptjs, started on first use and
 * unref'd (they never keep a process alive). Jobs wait in order for a free thread; the caller
 * (the verifier's fair queue) bounds how many wait. With 0 threads, bcryptjs runs in this thread.
 */

interface Job {
  op: 'hash' | 'compare';
  a: string;
  b: string | number;
  resolve(value: string | boolean): void;
  reject(error: Error): void;
}

// A CommonJS script evaluated in each worker: it loads bcryptjs from the path the parent resolved.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', ({ op, a, b }) => {
  try {
    parentPort.postMessage({ value: op === 'hash' ? bcrypt.hashSync(a, b) : bcrypt.compareSync(a, b) });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message) });
  }
});`;

let bcryptPath: string | undefined;
const resolveBcrypt = () => {
  bcryptPath ??= createRequire(import.meta.url).resolve('bcryptjs');
  return bcryptPath;
};

class Thread {
  readonly worker: Worker;
  job: Job | undefined;

  constructor(onIdle: (thread: Thread) => void, onExit: (thread: Thread) => void) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath: resolveBcrypt() } });
    this.worker.unref();
    this.worker.on('message', (message: { value?: string | boolean; error?: string }) => {
      const job = this.job;
      this.job = undefined;
      if (message.error !== undefined) job?.reject(new Error(message.error));
      else job?.resolve(message.value!);
      onIdle(this);
    });
    const lost = (err: unknown) => {
      this.job?.reject(err instanceof Error ? err : new Error('bcrypt worker stopped'));
      this.job = undefined;
      onExit(this);
    };
    this.worker.on('error', lost);
    this.worker.on('exit', lost);
  }

  run(job: Job): void {
    this.job = job;
    this.worker.postMessage({ op: job.op, a: job.a, b: job.b });
  }
}

export class BcryptPool {
  readonly #size: number;
  readonly #threads = new Set<Thread>();
  readonly #idle: Thread[] = [];
  readonly #queue: Job[] = [];
  #closed = false;

  constructor(size: number) {
    this.#size = size;
  }

  hash(material: string, cost: number): Promise<string> {
    if (this.#size === 0) return bcrypt.hash(material, cost);
    return this.#submit('hash', material, cost) as Promise<string>;
  }

  compare(material: string, hash: string): Promise<boolean> {
    if (this.#size === 0) return bcrypt.compare(material, hash);
    return this.#submit('compare', material, hash) as Promise<boolean>;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new Error('bcrypt pool closed'));
    await Promise.all([...this.#threads].map((t) => t.worker.terminate()));
    this.#threads.clear();
    this.#idle.length = 0;
  }

  #submit(op: Job['op'], a: string, b: string | number): Promise<string | boolean> {
    if (this.#closed) return Promise.reject(new Error('bcrypt pool closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ op, a, b, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let thread = this.#idle.pop();
      if (thread === undefined && this.#threads.size < this.#size) {
        thread = new Thread(
          (t) => {
            this.#idle.push(t);
            this.#dispatch();
          },
          (t) => {
            this.#threads.delete(t);
            const at = this.#idle.indexOf(t);
            if (at >= 0) this.#idle.splice(at, 1);
            if (!this.#closed) this.#dispatch();
          },
        );
        this.#threads.add(thread);
      }
      if (thread === undefined) return;
      thread.run(this.#queue.shift()!);
    }
  }
}
