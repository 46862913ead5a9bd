/**
 * bcrypt work, off the event loop and through a bounded admission queue.
 * bcrypt's native compare runs on libuv's thread pool, which TLS, DNS and
 * file I/O share; letting a reconnect storm queue thousands of compares there
 * would starve everything else. So at most `concurrency` compares run at
 * once, at most `maxQueued` wait, and past that callers are refused at once
 * with `overloaded` (HTTP 503, or a refused upgrade) instead of waiting.
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

  verify(secret: string, hash: string): Promise<boolean> {
    return this.#admit(() => bcrypt.compare(secret, hash));
  }

  async #admit<T>(work: () => Promise<T>): Promise<T> {
    const queuedAt = performance.now();
    if (this.#running >= this.#settings.concurrency) {
      if (this.#waiting.length >= this.#settings.maxQueued) {
        throw new CitadelError('overloaded', { retryAfterMs: 1_000 });
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running += 1;
    }
    this.#settings.onWait?.(performance.now() - queuedAt);
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running -= 1;
    }
  }
}
