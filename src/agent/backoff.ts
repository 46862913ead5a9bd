/**
 * Reconnect delays: the ceiling doubles from `initialMs` up to `capMs`, and
 * each delay is drawn uniformly below the ceiling ("full jitter"), also once
 * the cap is reached, so that a fleet cut off at one moment does not come
 * back at one moment. A floor keeps an unlucky draw from spinning.
 */

export interface BackoffSettings {
  readonly initialMs: number;
  readonly capMs: number;
  /** No delay is shorter than this, whatever the draw. */
  readonly floorMs: number;
  /** A source of numbers in [0, 1); injectable for tests. */
  readonly random: () => number;
}

export const backoffDefaults: BackoffSettings = Object.freeze({
  initialMs: 1_000,
  capMs: 60_000,
  floorMs: 100,
  random: Math.random,
});

/** Capped exponential backoff with full jitter; `reset()` after a stable session. */
export class Backoff {
  readonly #settings: BackoffSettings;
  #attempt = 0;

  constructor(settings: Partial<BackoffSettings> = {}) {
    const merged = { ...backoffDefaults, ...settings };
    if (!(merged.initialMs > 0) || !(merged.capMs >= merged.initialMs)) {
      throw new RangeError('backoff needs 0 < initialMs <= capMs');
    }
    if (!(merged.floorMs >= 0) || merged.floorMs > merged.initialMs) {
      throw new RangeError('backoff needs 0 <= floorMs <= initialMs');
    }
    this.#settings = merged;
  }

  /** How many delays have been drawn since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The ceiling the next delay is drawn below. */
  ceilingMs(): number {
    const { initialMs, capMs } = this.#settings;
    // Past 2^30 the product is far over any cap; stop the exponent growing.
    const exponent = Math.min(this.#attempt, 30);
    return Math.min(capMs, initialMs * 2 ** exponent);
  }

  /** Draws the next delay and raises the ceiling for the one after. */
  nextDelayMs(): number {
    const ceiling = this.ceilingMs();
    this.#attempt += 1;
    const drawn = Math.floor(this.#settings.random() * ceiling);
    return Math.min(ceiling, Math.max(this.#settings.floorMs, drawn));
  }

  reset(): void {
    this.#attempt = 0;
  }
}

/** Spreads a server-given delay by up to `spreadRatio` more, so retries do not align. */
export function withSpread(delayMs: number, spreadRatio = 0.1, random = Math.random): number {
  return Math.round(delayMs + delayMs * spreadRatio * random());
}
