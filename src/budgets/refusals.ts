/**
 * Every budget refusal is counted (for metrics) and audited, but in batches:
 * refusals are tallied per budget and key, and once a minute each tally
 * becomes one audit row with its count, so a client hammering a budget
 * cannot flood the audit table.
 */
import type { Clock, TimerHandle } from '../clock/clock.ts';
import type { AuditEvent } from '../database/rows.ts';

export interface Refusal {
  readonly budget: string;
  readonly agentId?: string;
  readonly ip?: string;
}

export class RefusalLedger {
  readonly #pending = new Map<string, { refusal: Refusal; count: number }>();
  readonly #totals = new Map<string, number>();
  readonly #clock: Clock;
  readonly #emit: (event: AuditEvent) => void;
  readonly #periodMs: number;
  #timer: TimerHandle | undefined;

  constructor(clock: Clock, emit: (event: AuditEvent) => void, periodMs = 60_000) {
    this.#clock = clock;
    this.#emit = emit;
    this.#periodMs = periodMs;
  }

  record(refusal: Refusal): void {
    this.#totals.set(refusal.budget, (this.#totals.get(refusal.budget) ?? 0) + 1);
    const key = `${refusal.budget}|${refusal.agentId ?? ''}|${refusal.ip ?? ''}`;
    const tally = this.#pending.get(key);
    if (tally) tally.count += 1;
    else this.#pending.set(key, { refusal, count: 1 });
    this.#timer ??= this.#clock.setTimeout(() => this.flush(), this.#periodMs);
  }

  /** Refusals so far, by budget, since the process started. */
  totals(): ReadonlyMap<string, number> {
    return this.#totals;
  }

  /** Turns the pending tallies into audit rows now. */
  flush(): void {
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const { refusal, count } of this.#pending.values()) {
      this.#emit({
        agentId: refusal.agentId ?? null,
        eventType: 'budget.refused',
        severity: 'warning',
        actor: refusal.agentId ? `agent:${refusal.agentId}` : `ip:${refusal.ip}`,
        action: `over the ${refusal.budget} budget`,
        result: 'failure',
        details: { budget: refusal.budget, count, ip: refusal.ip ?? null },
      });
    }
    this.#pending.clear();
  }
}
