/**
 * The clock every timer-heavy part of the daemon takes as a parameter, so that
 * heartbeat deadlines, token expiry and batching can be tested on simulated
 * time. `now()` is wall-clock milliseconds (for what is stored and shown);
 * `monotonicMs()` never steps back (for deadlines and windows).
 */
export interface TimerHandle {
  readonly id: unknown;
}

export interface Clock {
  now(): number;
  monotonicMs(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const timer = setTimeout(callback, delayMs);
    timer.unref();
    return { id: timer };
  },
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle.id as NodeJS.Timeout);
  },
});

/**
 * A clock for tests: time moves only when `advance()` is called, and timers
 * fire in deadline order as it passes them. It also counts pending timers,
 * so a test can prove that a stopped actor left none behind.
 */
export class ManualClock implements Clock {
  #wallMs: number;
  #monoMs = 0;
  #nextId = 1;
  #timers = new Map<number, { at: number; callback: () => void }>();

  constructor(startWallMs = Date.UTC(2026, 0, 1)) {
    this.#wallMs = startWallMs;
  }

  now(): number {
    return this.#wallMs + this.#monoMs;
  }

  monotonicMs(): number {
    return this.#monoMs;
  }

  /** Steps the wall clock alone, as an NTP correction or an operator would. */
  stepWallClock(deltaMs: number): void {
    this.#wallMs += deltaMs;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#monoMs + Math.max(0, delayMs), callback });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle.id as number);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  advance(deltaMs: number): void {
    const target = this.#monoMs + deltaMs;
    for (;;) {
      const next = this.#earliestDueBy(target);
      if (!next) break;
      this.#timers.delete(next.id);
      this.#monoMs = next.at;
      next.callback();
    }
    this.#monoMs = target;
  }

  #earliestDueBy(limit: number): { id: number; at: number; callback: () => void } | undefined {
    let best: { id: number; at: number; callback: () => void } | undefined;
    for (const [id, timer] of this.#timers) {
      if (timer.at <= limit && (!best || timer.at < best.at)) best = { id, ...timer };
    }
    return best;
  }
}
