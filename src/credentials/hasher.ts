/**
 * bcrypt work, off the event loop and through a bounded admission queue.
 * bcrypt's native compare runs on libuv's thread pool, which TLS, DNS and
 * file I/O share; letting a reconnect storm queue thousands of compares there
 * would starve everything else. So at most `concurrency` compares run at
 * once, at most `maxQueued` wait, and past that callers are refused at once
 * with `overloaded` (HTTP 503, or a refused upgrade) instead of waiting.
 *
 * A check may carry an `AbortSignal` (its client's socket closing): a
 * waiter whose client has gone leaves the queue at once, and a check whose
 * client went while it waited is not run. In a reconnect storm clients give
 * up and retry; without this the queue would fill with work no one reads.
 */
import bcrypt from 'bcrypt';
import { CitadelError } from '../errors/catalogue.ts';

export interface HasherSettings {
  readonly cost: number;
  readonly concurrency: number;
  readonly maxQueued: number;
  /** Told how long each admitted check waited for its slot (for metrics). */
  readonly onWait?: (waitedMs: number) => void;
}

export const defaultHasherSettings: HasherSettings = Object.freeze({
  cost: 10,
  concurrency: 2,
  maxQueued: 2_000,
});

export class Hasher {
  readonly #settings: HasherSettings;
  /** Each waiter's admit call; a waiter whose client leaves takes itself out. */
  readonly #waiting: Array<() => void> = [];
  #running = 0;

  constructor(settings: Partial<HasherSettings> = {}) {
    this.#settings = { ...defaultHasherSettings, ...settings };
  }

  get queueDepth(): number {
    return this.#waiting.length;
  }

  hash(secret: string): Promise<string> {
    return this.#admit(() => bcrypt.hash(secret, this.#settings.cost));
  }

  /** Compares; rejects with the signal's reason if it aborts before the compare starts. */
  verify(secret: string, hash: string, signal?: AbortSignal): Promise<boolean> {
    return this.#admit(() => bcrypt.compare(secret, hash), signal);
  }

  async #admit<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    const queuedAt = performance.now();
    if (this.#running >= this.#settings.concurrency) {
      if (this.#waiting.length >= this.#settings.maxQueued) {
        throw new CitadelError('overloaded', { retryAfterMs: 1_000 });
      }
      await this.#wait(signal);
    } else {
      this.#running += 1;
    }
    this.#settings.onWait?.(performance.now() - queuedAt);
    try {
      return await work();
    } finally {
      this.#handOn();
    }
  }

  /** Waits for a slot handed on by a finished check; leaves the queue if `signal` aborts. */
  #wait(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const admit = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const index = this.#waiting.indexOf(admit);
        if (index >= 0) this.#waiting.splice(index, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(admit);
    });
  }

  /** Gives the finished check's slot to the next waiter (those whose client left are gone). */
  #handOn(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#running -= 1;
  }
}
