/**
 * Failed authentications, budgeted per client IP in this process, so that
 * guessing tokens is slow and garbage cannot keep bcrypt busy. An IP over its
 * budget is refused (429) before any credential is looked at; only failures
 * count, so a client with a valid token is never slowed. The table of IPs is
 * bounded: past `maxTrackedIps` the least recently failing IP is forgotten.
 */
import type { Clock } from '../clock/clock.ts';
import { type BudgetDecision, peek, record, type WindowSpec } from './sliding-window.ts';

export class FailureBudget {
  readonly #spec: WindowSpec;
  readonly #clock: Clock;
  readonly #maxTrackedIps: number;
  readonly #failures = new Map<string, number[]>();

  constructor(spec: WindowSpec, clock: Clock, maxTrackedIps = 100_000) {
    this.#spec = spec;
    this.#clock = clock;
    this.#maxTrackedIps = maxTrackedIps;
  }

  /** Whether the IP may try to authenticate now. */
  check(ip: string): BudgetDecision {
    const times = this.#failures.get(ip);
    if (!times) return { allowed: true };
    const decision = peek(times, this.#spec, this.#clock.monotonicMs());
    if (times.length === 0) this.#failures.delete(ip);
    return decision;
  }

  /** Counts one failed authentication from the IP. */
  fail(ip: string): void {
    const times = this.#failures.get(ip) ?? [];
    this.#failures.delete(ip);
    if (this.#failures.size >= this.#maxTrackedIps) {
      const leastRecent = this.#failures.keys().next().value;
      if (leastRecent !== undefined) this.#failures.delete(leastRecent);
    }
    record(times, this.#spec, this.#clock.monotonicMs());
    this.#failures.set(ip, times);
  }

  get trackedIps(): number {
    return this.#failures.size;
  }
}
